"""docs/protocol.md must name every topic, command and event code the code uses."""

from __future__ import annotations

import inspect
import re

import pytest

from common import topics
from tests.kit import ROOT
from titano_app.frame import commands as frame_commands
from titano_app.frame import topics as frame_topics

DOC = (ROOT / "docs" / "protocol.md").read_text()

# Concrete sample values, and the placeholder each stands for in the document.
SAMPLES = {
    "base": ("titanoframe", "<base>"),
    "prefix": ("homeassistant", "homeassistant"),
    "frame": ("kitchen", "<frame>"),
    "shard": ("3f", "<shard>"),
    "command": ("next", "<command>"),
    "bridge_command": ("confirm_removal", "<command>"),
    "leaf": ("state", "state"),
}


def _generic(topic: str) -> str:
    for name in ("frame", "shard"):
        value, placeholder = SAMPLES[name]
        topic = re.sub(rf"(?<=/){value}(?=/|$)", placeholder, topic)
    topic = topic.replace("/titanoframe_kitchen/", "/titanoframe_<frame>/")
    if topic.startswith("titanoframe/"):
        topic = "<base>/" + topic[len("titanoframe/") :]
    return re.sub(r"/cmd/[a-z_]+$", "/cmd/<command>", topic)


def bridge_topics() -> set[str]:
    found = set()
    for name, fn in inspect.getmembers(topics, inspect.isfunction):
        if name.startswith(("parse", "_")) or name.endswith("_filter"):
            continue
        params = inspect.signature(fn).parameters
        args = [SAMPLES[p][0] for p in params]
        if name == "bridge_cmd":  # the bridge has commands of its own
            args[-1] = topics.BRIDGE_COMMANDS[0]
        found.add(_generic(fn(*args)))
    return found


def frame_side_topics() -> set[str]:
    t = frame_topics.Topics("kitchen")
    names = [t.status, t.state, t.event, t.manifest, t.page("3f"), t.bridge_status, t.cast]
    names += [t.commands.replace("+", "next")]
    return {_generic(n) for n in names}


@pytest.mark.parametrize("topic", sorted(bridge_topics() | frame_side_topics()))
def test_topic_is_documented(topic: str) -> None:
    assert f"`{topic}`" in DOC, f"{topic} is used in code but missing from docs/protocol.md"


@pytest.mark.parametrize("command", sorted(set(topics.COMMANDS) | set(frame_commands.NAMES)))
def test_command_is_documented(command: str) -> None:
    assert re.search(rf"^\| `{command}`", DOC, re.M) or f"`{command}`, " in DOC, command


def test_both_sides_agree_on_commands() -> None:
    assert tuple(topics.COMMANDS) == tuple(frame_commands.NAMES)


def test_both_sides_agree_on_the_cast_topic() -> None:
    for base in ("titanoframe", "home/frames"):
        assert frame_topics.Topics("kitchen", base).cast == topics.cast(base, "kitchen")
    assert "`cast_failed`" in DOC and '{"event": "cast"' in DOC


def _event_codes() -> set[str]:
    codes = set()
    for path in (ROOT / "titano_app").rglob("*.py"):
        text = path.read_text()
        codes |= set(re.findall(r"Error\(\s*\"([a-z_]+)\"", text))
        codes |= set(re.findall(r"code `([a-z_]+)`", text))
    return codes


@pytest.mark.parametrize("code", sorted(_event_codes()))
def test_event_code_is_documented(code: str) -> None:
    assert f"`{code}`" in DOC, f"event code {code} is missing from docs/protocol.md §3"

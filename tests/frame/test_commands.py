"""Commands, topics, state payloads and settings of the frame (protocol §1, §3, §4)."""

from __future__ import annotations

import json
import tomllib

import pytest

from tests.kit import ROOT
from titano_app.frame import VERSION, settings, state
from titano_app.frame.commands import MAX_PAYLOAD, CommandError, parse
from titano_app.frame.topics import Topics

PICTURE = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"

# -- commands


@pytest.mark.parametrize(
    ("name", "payload", "action"),
    [
        ("next", b"", ("next", None)),
        ("previous", b"whatever", ("previous", None)),
        ("sync", b"", ("sync", None)),
        ("pause", b"ON", ("pause", True)),
        ("pause", "off", ("pause", False)),
        ("display", b" OFF\n", ("display", False)),
        ("auto_brightness", b"ON", ("auto_brightness", True)),
        ("brightness", b"0", ("brightness", 0)),
        ("brightness", b"100", ("brightness", 100)),
        ("brightness", b"42.0", ("brightness", 42)),
        ("interval", b"5", ("interval", 5)),
        ("interval", bytearray(b"86400"), ("interval", 86400)),
        ("show", PICTURE.encode(), ("show", PICTURE)),
        ("show", PICTURE.upper() + "+" + PICTURE, ("show", PICTURE + "+" + PICTURE)),
    ],
)
def test_commands_parse_to_actions(
    name: str, payload: bytes | str, action: tuple[str, object]
) -> None:
    assert parse(name, payload) == action


@pytest.mark.parametrize(
    ("name", "payload", "why"),
    [
        ("reboot", b"", "unknown command"),
        ("", b"", "unknown command"),
        ("pause", b"yes", "not ON or OFF"),
        ("display", b"", "not ON or OFF"),
        ("brightness", b"101", "0..100"),
        ("brightness", b"-1", "not a whole number"),
        ("brightness", b"42.5", "not a whole number"),
        ("brightness", b"1_0", "not a whole number"),
        ("brightness", b"\xff", "not UTF-8"),
        ("interval", b"4", "5..86400"),
        ("interval", b"86401", "5..86400"),
        ("interval", b"1e3", "not a whole number"),
        ("interval", b"99999999999999999999", "not a whole number"),
        ("show", b"../../settings.json", "not a picture id"),
        ("show", b"", "not a picture id"),
        ("next", b"x" * (MAX_PAYLOAD + 1), "payload over 256 bytes"),
        ("brightness", "é" * 200, "payload over 256 bytes"),
    ],
)
def test_bad_commands_are_errors_with_a_detail(name: str, payload: bytes | str, why: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse(name, payload)
    assert caught.value.code == "bad_command"
    assert why in caught.value.detail


def test_setting_commands_are_idempotent() -> None:
    values = settings.clean(None)
    assert settings.apply(values, *parse("pause", b"ON"))
    assert not settings.apply(values, *parse("pause", b"ON"))
    assert values["paused"] is True


def test_brightness_turns_auto_brightness_off() -> None:
    values = settings.clean({"auto_brightness": True})
    assert settings.apply(values, *parse("brightness", b"60"))  # same level, auto goes off
    assert values["auto_brightness"] is False and values["brightness"] == 60
    assert not settings.apply(values, "brightness", 60)


def test_settings_refuse_values_a_command_could_not_give() -> None:
    values = settings.clean(None)
    with pytest.raises(ValueError, match="interval"):
        settings.apply(values, "interval", 1)
    with pytest.raises(ValueError, match="pause"):
        settings.apply(values, "pause", 1)
    with pytest.raises(ValueError, match="next"):
        settings.apply(values, "next", None)
    assert values == settings.DEFAULTS


# -- topics


def test_topics_of_a_frame() -> None:
    t = Topics("kitchen")
    assert t.status == "titanoframe/kitchen/status"
    assert t.state == "titanoframe/kitchen/state"
    assert t.event == "titanoframe/kitchen/event"
    assert t.manifest == "titanoframe/kitchen/manifest"
    assert t.pages == "titanoframe/kitchen/manifest/+"
    assert t.page("3f") == "titanoframe/kitchen/manifest/3f"
    assert t.commands == "titanoframe/kitchen/cmd/+"
    assert t.bridge_status == "titanoframe/bridge/status"
    assert Topics("hall", base="home/frames").state == "home/frames/hall/state"


def test_incoming_topics_are_recognised() -> None:
    t = Topics("kitchen")
    assert t.command_of("titanoframe/kitchen/cmd/next") == "next"
    assert t.command_of("titanoframe/kitchen/cmd/") is None
    assert t.command_of("titanoframe/kitchen/cmd/a/b") is None
    assert t.command_of("titanoframe/hall/cmd/next") is None
    assert t.shard_of("titanoframe/kitchen/manifest/3f") == "3f"
    assert t.shard_of("titanoframe/kitchen/manifest") is None


@pytest.mark.parametrize("frame", ["", "Kitchen", "a b", "x" * 33, "kitchen/+", "küche"])
def test_bad_frame_id_names_the_setting(frame: str) -> None:
    with pytest.raises(ValueError, match="FRAME_ID"):
        Topics(frame)


@pytest.mark.parametrize("base", ["", "a/+/b", "#", "/titanoframe", "titanoframe/"])
def test_bad_base_topic_is_refused(base: str) -> None:
    with pytest.raises(ValueError, match="base topic"):
        Topics("kitchen", base=base)


# -- state and events


def test_state_has_every_key_of_the_protocol() -> None:
    live = {"picture": PICTURE, "shown_at": 1763884800, "count": 3, "sync": "syncing"}
    doc = json.loads(state.state_json(settings.clean(None), live))
    assert list(doc) == [
        "v",
        "paused",
        "display",
        "brightness",
        "auto_brightness",
        "interval",
        *state.LIVE,
    ]
    assert doc["v"] == 1 and doc["display"] == "ON" and doc["picture"] == PICTURE
    assert doc["sync"] == "syncing" and doc["error"] is None


def test_state_refuses_unknown_keys_and_sync_states() -> None:
    with pytest.raises(ValueError):
        state.state_json(settings.clean(None), {"pictrue": None})
    with pytest.raises(ValueError):
        state.state_json(settings.clean(None), {"sync": "busy"})


def test_events() -> None:
    assert json.loads(state.touch_event("pause")) == {"event": "touch", "action": "pause"}
    assert json.loads(state.shown_event(PICTURE)) == {"event": "shown", "picture": PICTURE}
    assert json.loads(state.synced_event(3, 1, 2)) == {
        "event": "synced",
        "added": 3,
        "removed": 1,
        "pages": 2,
    }
    error = json.loads(state.error_event("sd_full", "x" * 1000))
    assert error["code"] == "sd_full" and len(error["detail"]) == state.DETAIL_LIMIT
    with pytest.raises(ValueError):
        state.touch_event("swipe")


def test_pacer_sends_on_change_at_most_once_a_second_and_every_five_minutes() -> None:
    pacer = state.Pacer()
    sent = []
    changes = {0, 100, 200, 5_000}
    for now in range(0, 700_000, 100):
        if now in changes:
            pacer.changed()
        if pacer.due(now):
            pacer.sent(now)
            sent.append(now)
    assert sent[:3] == [0, 1_000, 5_000]
    assert sent[3:] == [305_000, 605_000]


def test_frame_version_is_the_project_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["version"] == VERSION

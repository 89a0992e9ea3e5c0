"""The bridge's own Home Assistant device: valid for every supported release, every entity read
from the bridge's health document on `<base>/bridge/state`, a confirm button per frame."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge import bridgedevice, discovery
from common import topics
from tests.kit import hacheck

BASE, PREFIX = "titanoframe", "homeassistant"
FRAMES = ("kitchen", "hall-2")

# The health document (the `/healthz` body) as the bridge publishes it on `bridge/state`.
HEALTH: dict[str, Any] = {
    "status": "degraded",
    "reason": "not connected to the MQTT broker",
    "version": "1.4.0",
    "mqtt": False,
    "immich": False,
    "immich_reason": "connection refused",
    "last_poll": "2025-11-23T09:00:00+00:00",
    "last_error": "connection refused",
    "poll_errors": 3,
    "frames_configured": 2,
    "frames": {
        "kitchen": {"pictures": 40, "held_removals": 12, "held_since": "2025-11-23T08:00:00+00:00",
                    "held_until": "2025-11-23T10:00:00+00:00", "boards": 1, "shared_id": False},
        "hall-2": {"pictures": 5, "held_removals": 0, "held_since": None, "held_until": None,
                   "boards": 2, "shared_id": True},
    },
}  # fmt: skip


def doc(frames: tuple[str, ...] = FRAMES, previous: bytes | None = None) -> dict[str, Any]:
    return bridgedevice.device_config(BASE, frames, "1.4.0", "https://example.org/t", previous)


def render(template: str, health: dict[str, Any] = HEALTH) -> str:
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment()
    # Home Assistant's as_datetime reads ISO strings and unix times alike.
    env.globals["as_datetime"] = lambda v: (
        datetime.fromtimestamp(v, UTC) if isinstance(v, (int, float)) else datetime.fromisoformat(v)
    )
    return str(env.from_string(template).render(value_json=health))


def test_topic_and_payload_are_valid_for_every_release() -> None:
    topic, payload = bridgedevice.message(PREFIX, BASE, FRAMES, "1.4.0")
    assert topic == "homeassistant/device/titanoframe-bridge/config"
    assert hacheck.check(payload) == []
    other = bridgedevice.message(PREFIX, "home/titanoframe", FRAMES, "1.4.0")[0]
    assert other == "homeassistant/device/titanoframe-bridge-home_titanoframe/config"


def test_device_availability_and_state_come_from_the_bridge() -> None:
    d = doc()
    assert d["avty"] == [{"t": topics.bridge_status(BASE)}]
    assert d["dev"]["sw"] == "1.4.0" and d["dev"]["ids"] == ["titanoframe-bridge"]
    for key, comp in d["cmps"].items():
        if comp["p"] != "button":
            assert comp["stat_t"] == topics.bridge_state(BASE), key
            assert comp["ent_cat"] == "diagnostic", key


def test_entities_read_the_health_document() -> None:
    c = doc()["cmps"]
    assert render(c["immich"]["val_tpl"]) == "OFF" and c["immich"]["dev_cla"] == "connectivity"
    assert json.loads(render(c["immich"]["json_attr_tpl"])) == {"reason": "connection refused"}
    assert render(c["immich"]["val_tpl"], {**HEALTH, "immich": None}) == "None"  # no Immich
    assert render(c["problem"]["val_tpl"]) == "ON"
    assert render(c["version"]["val_tpl"]) == "1.4.0"
    assert render(c["poll_errors"]["val_tpl"]) == "3"
    assert render(c["frames_configured"]["val_tpl"]) == "2"
    last_poll = datetime.fromisoformat(render(c["last_poll"]["val_tpl"]))
    assert last_poll == datetime(2025, 11, 23, 9, tzinfo=UTC)
    assert render(c["last_poll"]["val_tpl"], {**HEALTH, "last_poll": None}) == "None"
    assert render(c["last_poll"]["val_tpl"], {**HEALTH, "last_poll": 1763888400.0}) != "None"


def test_per_frame_held_removals_confirm_button_and_shared_id() -> None:
    c = doc()["cmps"]
    assert render(c["kitchen_held_removals"]["val_tpl"]) == "12"
    attrs = json.loads(render(c["kitchen_held_removals"]["json_attr_tpl"]))
    assert attrs == {"held_since": "2025-11-23T08:00:00+00:00",
                     "held_until": "2025-11-23T10:00:00+00:00"}  # fmt: skip
    assert render(c["hall-2_shared_id"]["val_tpl"]) == "ON"
    assert render(c["kitchen_shared_id"]["val_tpl"]) == "OFF"
    assert json.loads(render(c["hall-2_shared_id"]["json_attr_tpl"])) == {"boards": 2}
    assert c["hall-2_shared_id"]["dev_cla"] == "problem"
    # A frame the document does not list yet is unknown, not an error.
    assert render(c["kitchen_held_removals"]["val_tpl"], {**HEALTH, "frames": {}}) == "None"
    for frame in FRAMES:
        button = c[f"{frame}_confirm_removal"]
        assert button["cmd_t"] == topics.bridge_cmd(BASE, "confirm_removal")
        assert button["cmd_t"] == "titanoframe/bridge/cmd/confirm_removal"
        assert button["pl_prs"] == frame and button["ent_cat"] == "config"


def test_unique_ids_are_stable_and_apart_from_the_frames() -> None:
    ids = [comp["uniq_id"] for comp in doc()["cmps"].values()]
    assert len(ids) == len(set(ids)) == 7 + 3 * len(FRAMES)
    assert ids == [comp["uniq_id"] for comp in doc()["cmps"].values()]
    frame_ids = {
        c.get("uniq_id") for c in discovery.device_config("kitchen", BASE, "1")["cmps"].values()
    }
    assert not set(ids) & frame_ids


@pytest.mark.usefixtures("gc_paused")
def test_a_frame_left_out_of_the_config_loses_its_entities_once() -> None:
    before = json.dumps(doc()).encode()
    after = doc(("kitchen",), previous=before)
    assert {k: v for k, v in after["cmps"].items() if k.startswith("hall-2_")} == {
        "hall-2_held_removals": {"p": "sensor"},
        "hall-2_confirm_removal": {"p": "button"},
        "hall-2_shared_id": {"p": "binary_sensor"},
    }
    assert hacheck.check(after) == []
    # Published again later, the stubs are not repeated: the components are gone by then.
    again = doc(("kitchen",), previous=json.dumps(after).encode())
    assert not any(k.startswith("hall-2_") for k in again["cmps"])
    assert doc(previous=b"not json") == doc() == doc(previous=b"[" * 5000)


def test_the_bridge_device_is_never_taken_for_a_stale_frame() -> None:
    topic, payload = bridgedevice.message(PREFIX, BASE, FRAMES, "1")
    assert topics.parse_discovery(PREFIX, topic) is None
    assert discovery.stale(["kitchen"], {topic: payload}, PREFIX, BASE) == []

"""The bridge's own Home Assistant device: valid for every supported release, every entity read
from the bridge's health document on `<base>/bridge/state`; the bridge's entities for each frame
(held removals, a confirm button, frame id shared) on the frame's device; every discovery message
within the broker's packet size however many frames there are."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge import bridgedevice, discovery
from common import topics
from tests.kit import hacheck
from tests.kit.broker import CONFIG as BROKER_CONFIG

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


def doc(previous: bytes | None = None) -> dict[str, Any]:
    return bridgedevice.device_config(BASE, "1.4.0", "https://example.org/t", previous)


def frame_cmps(frame: str) -> dict[str, dict[str, Any]]:
    components: dict[str, dict[str, Any]] = discovery.device_config(frame, BASE, "1.4.0")["cmps"]
    return components


def render(template: str, health: dict[str, Any] = HEALTH) -> str:
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment()
    # Home Assistant's as_datetime reads ISO strings and unix times alike.
    env.globals["as_datetime"] = lambda v: (
        datetime.fromtimestamp(v, UTC) if isinstance(v, (int, float)) else datetime.fromisoformat(v)
    )
    return str(env.from_string(template).render(value_json=health))


def test_topic_and_payload_are_valid_for_every_release() -> None:
    topic, payload = bridgedevice.message(PREFIX, BASE, "1.4.0")
    assert topic == "homeassistant/device/titanoframe-bridge/config"
    assert hacheck.check(payload) == []
    other = bridgedevice.message(PREFIX, "home/titanoframe", "1.4.0")[0]
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


def test_held_removals_confirm_button_and_shared_id_are_on_the_frames_device() -> None:
    kitchen, hall = frame_cmps("kitchen"), frame_cmps("hall-2")
    assert render(kitchen["held_removals"]["val_tpl"]) == "12"
    attrs = json.loads(render(kitchen["held_removals"]["json_attr_tpl"]))
    assert attrs == {"held_since": "2025-11-23T08:00:00+00:00",
                     "held_until": "2025-11-23T10:00:00+00:00"}  # fmt: skip
    assert render(hall["shared_id"]["val_tpl"]) == "ON"
    assert render(kitchen["shared_id"]["val_tpl"]) == "OFF"
    assert json.loads(render(hall["shared_id"]["json_attr_tpl"])) == {"boards": 2}
    assert hall["shared_id"]["dev_cla"] == "problem"
    # A frame the document does not list yet is unknown, not an error.
    assert render(kitchen["held_removals"]["val_tpl"], {**HEALTH, "frames": {}}) == "None"
    for frame in FRAMES:
        c = frame_cmps(frame)
        names = {c[k]["name"] for k in ("held_removals", "confirm_removal", "shared_id")}
        assert names == {"Held removals", "Confirm removal", "Frame id shared"}
        button = c["confirm_removal"]
        assert button["cmd_t"] == topics.bridge_cmd(BASE, "confirm_removal")
        assert button["cmd_t"] == "titanoframe/bridge/cmd/confirm_removal"
        assert button["pl_prs"] == frame and button["ent_cat"] == "config"
        for key in ("held_removals", "confirm_removal", "shared_id"):
            # The bridge's state and command topic: there while the bridge runs.
            assert c[key]["avty"] == [{"t": topics.bridge_status(BASE)}], key
            assert c[key]["uniq_id"] == f"titanoframe_{frame}_{key}"
            assert c[key].get("stat_t", topics.bridge_state(BASE)) == topics.bridge_state(BASE)
        assert hacheck.check(discovery.device_config(frame, BASE, "1.4.0")) == []


def test_unique_ids_are_stable_and_apart_from_the_frames() -> None:
    ids = [comp["uniq_id"] for comp in doc()["cmps"].values()]
    assert len(ids) == len(set(ids)) == 7
    assert ids == [comp["uniq_id"] for comp in doc()["cmps"].values()]
    frame_ids = {c.get("uniq_id") for c in frame_cmps("kitchen").values()}
    assert not set(ids) & frame_ids


def earlier_payload(frames: tuple[str, ...]) -> bytes:
    """The bridge's device as earlier releases wrote it: three entities per frame on it."""
    d = doc()
    for frame in frames:
        for key, comp in bridgedevice.frame_components(BASE, frame).items():
            old = {k: v for k, v in comp.items() if k != "avty"}
            d["cmps"][f"{frame}_{key}"] = {**old, "uniq_id": f"titanoframe-bridge_{frame}_{key}"}
    return json.dumps(d, separators=(",", ":")).encode()


@pytest.mark.usefixtures("gc_paused")
def test_an_upgrade_removes_the_frames_entities_from_the_bridge_device_once() -> None:
    before = earlier_payload(FRAMES)
    assert hacheck.check(before) == []
    after = doc(previous=before)
    assert {k: v for k, v in after["cmps"].items() if k not in doc()["cmps"]} == {
        "kitchen_held_removals": {"p": "sensor"},
        "kitchen_confirm_removal": {"p": "button"},
        "kitchen_shared_id": {"p": "binary_sensor"},
        "hall-2_held_removals": {"p": "sensor"},
        "hall-2_confirm_removal": {"p": "button"},
        "hall-2_shared_id": {"p": "binary_sensor"},
    }
    assert hacheck.check(after) == []
    # Published again later, the stubs are not repeated: the components are gone by then.
    assert doc(previous=json.dumps(after).encode()) == doc()
    assert doc(previous=b"not json") == doc() == doc(previous=b"[" * 5000)


def max_packet_size() -> int:
    found = re.search(r"^max_packet_size\s+(\d+)\s*$", BROKER_CONFIG.read_text(), re.M)
    assert found, "broker_config/mosquitto.conf sets no max_packet_size"
    return int(found.group(1))


@pytest.mark.parametrize("count", [50, 200])
def test_every_discovery_message_fits_the_brokers_packet_size(count: int) -> None:
    limit = max_packet_size()
    # Longest frame ids the config allows (32 characters) and a long base topic.
    base = "home/" + "b" * 40
    frames = tuple(f"{i:03d}".rjust(32, "f") for i in range(count))
    version, url = "10.20.300-rc.4000", "https://example.org/" + "u" * 80
    topic, payload = bridgedevice.message(PREFIX, base, version, url)
    # An MQTT PUBLISH carries the topic (and a few header bytes) in the same packet.
    assert len(payload) + len(topic) + 16 <= limit
    # Upgrading from a release that listed every frame's entities on the bridge's device: the
    # largest such payload the broker could have held, the removal stubs smaller still.
    held = next(
        earlier
        for n in range(count, 0, -1)
        if len(earlier := earlier_payload(frames[:n])) + len(topic) + 16 <= limit
    )
    assert len(bridgedevice.message(PREFIX, base, version, url, previous=held)[1]) < len(held)
    firmware = "0.4.1-" + "x" * 58  # the longest version the bridge takes from a frame
    for frame in frames:
        topic, payload = discovery.message(PREFIX, frame, base, version, url, firmware)
        assert len(payload) + len(topic) + 16 <= limit, frame


def test_the_bridge_device_is_never_taken_for_a_stale_frame() -> None:
    topic, payload = bridgedevice.message(PREFIX, BASE, "1")
    assert topics.parse_discovery(PREFIX, topic) is None
    assert discovery.stale(["kitchen"], {topic: payload}, PREFIX, BASE) == []

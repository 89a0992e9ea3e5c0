"""Home Assistant sees each frame as a device: discovery validated against Home Assistant's
rules, stable unique ids, removal of frames dropped from the config, re-publication when Home
Assistant comes online, and the `picture` topic the image entity reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from common.config import Source
from common.signing import verify_signature
from tests.kit import hacheck
from tests.kit.bridgekit import BASE, URL_KEY, Bridge, Observer, config, frame, retained
from tests.kit.broker import Mosquitto
from tests.kit.fakes.immich import FakeImmich
from tests.kit.mqttc import publish

PREFIX = "homeassistant"
ENTITIES = {
    "display", "pause", "auto_brightness", "next", "previous", "sync", "interval", "picture",
    "count", "pending", "sd_free", "last_sync", "light", "rssi", "like", "hide",
    "uptime", "sync_status", "last_error", "mem_free", "boot",
    "held_removals", "confirm_removal", "shared_id",  # the bridge's, for this frame
}  # fmt: skip
TRIGGERS = {"touch_next", "touch_previous", "touch_pause", "touch_hold"}


BRIDGE_DEVICE = f"{PREFIX}/device/titanoframe-bridge/config"


def device_topic(frame_id: str) -> str:
    return f"{PREFIX}/device/titanoframe_{frame_id}/config"


@pytest.fixture
def fake() -> Iterator[FakeImmich]:
    with FakeImmich() as f:
        f.now = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
        yield f


def test_every_frame_gets_a_valid_device(broker: Mosquitto, fake: FakeImmich) -> None:
    fake.add_favorites(3)
    bridge = Bridge(config(broker, fake, frames=[frame("kitchen"), frame("hall")]))
    held = retained(broker, f"{PREFIX}/#")
    for frame_id in ("kitchen", "hall"):
        payload = held[device_topic(frame_id)]
        assert hacheck.check(payload) == []
        doc = json.loads(payload)
        assert set(doc["cmps"]) == ENTITIES | TRIGGERS
        uids = {k: c.get("uniq_id") for k, c in doc["cmps"].items() if k in ENTITIES}
        assert uids == {k: f"titanoframe_{frame_id}_{k}" for k in ENTITIES}
        assert doc["avty"] == [{"t": f"{BASE}/{frame_id}/status"}]
    hub = json.loads(held[BRIDGE_DEVICE])
    assert hacheck.check(held[BRIDGE_DEVICE]) == []
    assert not any(k.startswith(("kitchen_", "hall_")) for k in hub["cmps"])
    assert hub["avty"] == [{"t": f"{BASE}/bridge/status"}]
    bridge.close()


def test_restart_keeps_unique_ids_and_publishes_nothing(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    cfg = config(broker, fake)
    Bridge(cfg).close()
    first = retained(broker, f"{PREFIX}/#")[device_topic("kitchen")]
    obs = Observer(broker, f"{PREFIX}/#")
    obs.take()
    bridge = Bridge(cfg)
    assert obs.take() == []
    assert retained(broker, f"{PREFIX}/#")[device_topic("kitchen")] == first
    bridge.close()


def test_frame_dropped_from_config_is_removed(broker: Mosquitto, fake: FakeImmich) -> None:
    Bridge(config(broker, fake, frames=[frame("kitchen"), frame("hall")])).close()
    # Another installation on the same broker (another base topic) keeps its device.
    other = json.dumps({"o": {"name": "titanoframe"}, "avty": [{"t": "elsewhere/attic/status"}]})
    publish(broker, "bridge", device_topic("attic"), other, retain=True)
    obs = Observer(broker, f"{PREFIX}/#")
    obs.take()
    bridge = Bridge(config(broker, fake, frames=[frame("kitchen")]))
    sent = {topic: payload for topic, payload, _ in obs.take()}
    # Hall's entities, the bridge's ones too, go with its device; the bridge's device stays.
    assert sent == {device_topic("hall"): b""}
    held = retained(broker, f"{PREFIX}/#")
    assert set(held) == {device_topic("kitchen"), device_topic("attic"), BRIDGE_DEVICE}
    bridge.close()


def test_an_upgrade_moves_the_frames_entities_off_the_bridge_device(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    # Earlier releases listed each frame's held removals, confirm button and shared id on the
    # bridge's device; the broker still holds that payload.
    earlier = {
        "dev": {"ids": ["titanoframe-bridge"], "name": "titanoframe bridge"},
        "o": {"name": "titanoframe"},
        "avty": [{"t": f"{BASE}/bridge/status"}],
        "cmps": {
            "hall_held_removals": {"p": "sensor", "stat_t": f"{BASE}/bridge/state",
                                   "uniq_id": "titanoframe-bridge_hall_held_removals"},
            "hall_confirm_removal": {"p": "button", "cmd_t": f"{BASE}/bridge/cmd/confirm_removal",
                                     "uniq_id": "titanoframe-bridge_hall_confirm_removal"},
        },
    }  # fmt: skip
    publish(broker, "bridge", BRIDGE_DEVICE, json.dumps(earlier), retain=True)
    bridge = Bridge(config(broker, fake, frames=[frame("hall")]))
    hub = json.loads(retained(broker, f"{PREFIX}/#")[BRIDGE_DEVICE])
    assert {k: c for k, c in hub["cmps"].items() if k.startswith("hall_")} == {
        "hall_held_removals": {"p": "sensor"},
        "hall_confirm_removal": {"p": "button"},
    }
    assert hacheck.check(hub) == []
    hall = json.loads(retained(broker, f"{PREFIX}/#")[device_topic("hall")])["cmps"]
    assert hall["held_removals"]["uniq_id"] == "titanoframe_hall_held_removals"
    assert hall["confirm_removal"]["pl_prs"] == "hall"
    bridge.close()


def test_discovery_is_sent_again_when_home_assistant_starts(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    # A retained birth message found at start is old news, not Home Assistant starting.
    publish(broker, "homeassistant", f"{PREFIX}/status", "online", retain=True)
    bridge = Bridge(config(broker, fake, frames=[frame("kitchen"), frame("hall")]))
    obs = Observer(broker, f"{PREFIX}/device/#")
    obs.take()
    bridge.barrier()
    assert obs.take() == []
    publish(broker, "homeassistant", f"{PREFIX}/status", "online")
    assert bridge.pump(lambda: len(obs.messages) >= 3)
    topics_sent = {t for t, _, _ in obs.take()}
    assert topics_sent == {device_topic("kitchen"), device_topic("hall"), BRIDGE_DEVICE}
    publish(broker, "homeassistant", f"{PREFIX}/status", "offline")
    bridge.barrier()
    assert obs.take() == []
    bridge.close()


def _show(broker: Mosquitto, frame_id: str, picture_id: str) -> None:
    state = {"v": 1, "picture": picture_id, "shown_at": 1763884800, "display": "ON"}
    publish(broker, frame_id, f"{BASE}/{frame_id}/state", json.dumps(state), retain=True)


def _picture(
    bridge: Bridge, broker: Mosquitto, frame_id: str, picture_id: str
) -> dict[str, object]:
    topic = f"{BASE}/{frame_id}/picture"
    obs = Observer(broker, topic)
    assert bridge.pump(
        lambda: any(json.loads(p).get("id") == picture_id for _, p, _ in obs.messages if p)
    )
    obs.close()
    doc = json.loads(retained(broker, topic)[topic])
    assert isinstance(doc, dict)
    return doc


def test_picture_topic_follows_the_frame(broker: Mosquitto, fake: FakeImmich) -> None:
    lyon = fake.add_asset(
        favorite=True,
        taken=datetime(2024, 6, 1, 10, 0, tzinfo=UTC),
        city="Lyon",
        country="France",
        description="Picnic",
        time_zone="Europe/Paris",
    )
    other = fake.add_asset(favorite=True, width=3024, height=4032)
    alice, bob = fake.add_person("Alice"), fake.add_person("Bob")
    fake.add_face(lyon, alice)
    fake.add_face(other, bob)
    fake.add_album("Family", [lyon])
    bridge = Bridge(config(broker, fake))
    bridge.step()
    _show(broker, "kitchen", lyon)
    doc = _picture(bridge, broker, "kitchen", lyon)
    assert {k: v for k, v in doc.items() if k != "url"} == {
        "id": lyon,
        "taken": "2024-06-01T12:00:00+02:00",
        "city": "Lyon",
        "country": "France",
        "people": ["Alice"],
        "albums": ["Family"],
        "description": "Picnic",
    }
    url = urlsplit(str(doc["url"]))
    assert url.path == f"/v1/frames/kitchen/pictures/{lyon}.jpg"
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert verify_signature(URL_KEY, "kitchen", lyon, query["exp"], query["sig"], now=0) is None
    assert "kitchen-pw" not in str(doc["url"])  # no frame secret on MQTT

    pair = f"{lyon}+{other}"
    _show(broker, "kitchen", pair)
    doc = _picture(bridge, broker, "kitchen", pair)
    assert doc["people"] == ["Alice", "Bob"] and doc["city"] == "Lyon"
    bridge.close()


def test_picture_not_published_again_after_restart(broker: Mosquitto, fake: FakeImmich) -> None:
    photo = fake.add_asset(favorite=True)
    cfg = config(broker, fake)
    bridge = Bridge(cfg)
    _show(broker, "kitchen", photo)
    _picture(bridge, broker, "kitchen", photo)
    bridge.close()
    obs = Observer(broker, f"{BASE}/kitchen/picture")
    obs.take()
    bridge = Bridge(cfg)
    bridge.barrier()
    assert obs.take() == []
    bridge.close()


def test_folder_picture_uses_exif(broker: Mosquitto, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    img = Image.new("RGB", (64, 48), (200, 120, 40))
    exif = Image.Exif()
    exif[0x010E] = "Harbour"
    exif.get_ifd(0x8769)[0x9003] = "2023:07:14 18:30:00"
    exif.get_ifd(0x8769)[0x9011] = "+02:00"
    img.save(photos / "harbour.jpg", exif=exif)
    folder = (Source("folder", str(photos)),)
    bridge = Bridge(config(broker, None, frames=[frame("kitchen", folder)]))
    bridge.step()
    from common.folderids import folder_asset_id

    pid = folder_asset_id("harbour.jpg")
    _show(broker, "kitchen", pid)
    doc = _picture(bridge, broker, "kitchen", pid)
    assert doc["taken"] == "2023-07-14T18:30:00+02:00"
    assert doc["description"] == "Harbour"
    assert doc["people"] == [] and doc["albums"] == []
    bridge.close()


@pytest.mark.usefixtures("gc_paused")
def test_a_frame_state_nested_too_deep_for_json_changes_nothing(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    photo = fake.add_asset(favorite=True)
    bridge = Bridge(config(broker, fake))
    bridge.step()
    # Fits the broker's packet limit, but Python's json gives up with RecursionError.
    publish(broker, "kitchen", f"{BASE}/kitchen/state", b"[" * 5000, retain=True)
    bridge.barrier()
    _show(broker, "kitchen", photo)
    assert _picture(bridge, broker, "kitchen", photo)["id"] == photo
    bridge.close()


def test_the_frame_version_is_its_device_firmware(broker: Mosquitto, fake: FakeImmich) -> None:
    cfg = config(broker, fake)
    bridge = Bridge(cfg)
    first = json.loads(retained(broker, f"{PREFIX}/#")[device_topic("kitchen")])
    assert "sw" not in first["dev"]  # not the bridge's version: the frame has not said yet
    obs = Observer(broker, device_topic("kitchen"))
    obs.take()
    state = {"v": 1, "picture": None, "display": "ON", "version": "0.9.0"}
    publish(broker, "kitchen", f"{BASE}/kitchen/state", json.dumps(state), retain=True)
    assert bridge.pump(lambda: bool(obs.messages))
    (_, payload, _), *_ = obs.take()
    doc = json.loads(payload)
    assert doc["dev"]["sw"] == "0.9.0" and doc["o"]["sw"] == first["o"]["sw"]
    assert hacheck.check(payload) == []
    bridge.close()
    # A restart publishes nothing: the frame still reports the version the broker holds.
    bridge = Bridge(cfg)
    bridge.barrier()
    assert obs.take() == []
    assert json.loads(retained(broker, f"{PREFIX}/#")[device_topic("kitchen")])["dev"]["sw"] == (
        "0.9.0"
    )
    bridge.close()

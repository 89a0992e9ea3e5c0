"""Like, hide and send on the bridge, driven through the real broker with an injected clock:
the Immich writes (counted at the fake Immich), the manifest published at once, the replies on
the frame's event topic, a partner's photo refused without a write, guests that outlive a
restart and leave at their time without tripping the removal guard, and the scope check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bridge.service import Service
from bridge.startup import StartupError
from common.config import Exclude
from tests.kit.bridgekit import BASE, Bridge, Observer, config, frame, manifest_of, retained
from tests.kit.broker import Mosquitto
from tests.kit.fakes.immich import FakeImmich
from tests.kit.mqttc import publish

CMD = f"{BASE}/kitchen/cmd"
EVENT = f"{BASE}/kitchen/event"
SKIP = (Exclude("tag", "frame-skip"),)


@pytest.fixture
def fake() -> Iterator[FakeImmich]:
    with FakeImmich() as f:
        yield f


def _writes(fake: FakeImmich) -> int:
    """Requests that change something in Immich (search is a POST that does not)."""
    return fake.count("/assets", "PUT") + fake.count("/tags", "PUT") + fake.count("/tags", "POST")


def _events(obs: Observer) -> list[dict[str, object]]:
    return [json.loads(p) for t, p, _ in obs.take() if t == EVENT]


def _manifest_publishes(bridge: Bridge) -> float:
    """Manifest updates published for the frame (the bridge's own state topic aside)."""
    return bridge.service.metrics.get("manifest_publishes_total", frame="kitchen")


def _manifest(broker: Mosquitto) -> set[str]:
    return set(manifest_of(retained(broker)))


def test_like_toggles_the_favourite_and_the_manifest_follows_at_once(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    a, b = fake.add_favorites(2)
    other = fake.add_asset()
    bridge = Bridge(config(broker, fake))
    bridge.tick()  # the first poll
    assert _manifest(broker) == {a, b}
    obs = Observer(broker, f"{BASE}/kitchen/#")
    polls = fake.count("/search")
    publish(broker, "homeassistant", f"{CMD}/like", a)  # a favourite: liked again = unliked
    assert bridge.pump(lambda: _manifest(broker) == {b})
    assert fake.asset(a).favorite is False
    publish(broker, "homeassistant", f"{CMD}/like", other)
    assert bridge.pump(lambda: _manifest(broker) == {b, other})
    assert fake.asset(other).favorite is True
    assert fake.count("/search") == polls  # no poll was needed
    assert fake.count("/assets", "PUT") == 2
    msgs = obs.take()
    events = [json.loads(p) for t, p, _ in msgs if t == EVENT]
    assert events == [
        {"event": "like", "picture": a, "favorite": False},
        {"event": "like", "picture": other, "favorite": True},
    ]
    assert [p for t, p, _ in msgs if t == f"{CMD}/notice"] == [b"unliked", b"liked"]
    # the next poll reads the same from Immich: nothing more to publish
    before = _manifest_publishes(bridge)
    bridge.step()
    bridge.walk()
    assert _manifest(broker) == {b, other} and _manifest_publishes(bridge) == before
    bridge.close()


def test_hide_tags_the_shown_picture_making_the_tag_once(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    a, b, c = fake.add_favorites(3)
    bridge = Bridge(config(broker, fake, frames=[frame(exclude=SKIP)]))
    bridge.tick()  # the first poll
    obs = Observer(broker, EVENT)
    publish(broker, "kitchen", f"{BASE}/kitchen/state", json.dumps({"picture": b}))
    bridge.barrier()
    publish(broker, "homeassistant", f"{CMD}/hide", "PRESS")  # the picture shown
    assert bridge.pump(lambda: _manifest(broker) == {a, c})
    publish(broker, "homeassistant", f"{CMD}/hide", c)
    assert bridge.pump(lambda: _manifest(broker) == {a})
    skip = [t for t in fake.tags.values() if t.name == "frame-skip"]
    assert len(skip) == 1 and fake.count("/tags", "POST") == 1
    assert skip[0].id in fake.asset(b).tag_ids and skip[0].id in fake.asset(c).tag_ids
    assert [e["event"] for e in _events(obs)] == ["hide", "hide"]
    before = _manifest_publishes(bridge)
    bridge.walk()  # the full walk finds the tag in Immich: the same manifest
    assert _manifest(broker) == {a} and _manifest_publishes(bridge) == before
    bridge.close()


def test_a_partners_photo_is_refused_without_a_write(broker: Mosquitto, fake: FakeImmich) -> None:
    partner = fake.add_partner()
    mine = fake.add_favorites(1)[0]
    theirs = fake.add_asset(favorite=True, owner=partner)
    cfg = config(broker, fake, frames=[frame(exclude=SKIP, long_press="hide")])
    bridge = Bridge(cfg)
    bridge.tick()  # the first poll
    assert _manifest(broker) == {mine, theirs}
    obs = Observer(broker, EVENT)
    publish(broker, "homeassistant", f"{CMD}/like", theirs)
    touch = {"event": "touch", "action": "hold", "picture": theirs}
    publish(broker, "kitchen", EVENT, json.dumps(touch))  # a long press on the frame
    assert bridge.pump(lambda: len([e for e in _events_seen(obs) if e["event"] == "error"]) == 2)
    errors = [e for e in _events_seen(obs) if e["event"] == "error"]
    assert {e["code"] for e in errors} == {"not_owner"}
    assert "partner" in str(errors[0]["detail"])
    assert _writes(fake) == 0
    assert fake.asset(theirs).tag_ids == set()
    assert _manifest(broker) == {mine, theirs}
    metrics = bridge.service.metrics
    assert metrics.get("frame_requests_total", frame="kitchen", action="like", result="not_owner")
    assert metrics.get("frame_requests_total", frame="kitchen", action="hide", result="not_owner")
    bridge.close()


def _events_seen(obs: Observer) -> list[dict[str, object]]:
    with obs.lock:
        return [json.loads(p) for t, p, _ in obs.messages if t == EVENT]


def test_a_long_press_does_what_the_frame_is_configured_for(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    a, b = fake.add_favorites(2)
    frames = [frame("kitchen", long_press="like"), frame("hall")]
    bridge = Bridge(config(broker, fake, frames=frames))
    bridge.tick()  # the first poll
    hold = json.dumps({"event": "touch", "action": "hold", "picture": a})
    publish(broker, "hall", f"{BASE}/hall/event", hold.replace(a, b))  # long_press off
    publish(broker, "kitchen", EVENT, json.dumps({"event": "touch", "action": "next"}))
    publish(broker, "kitchen", EVENT, hold)
    assert bridge.pump(lambda: not fake.asset(a).favorite)
    bridge.barrier()
    assert fake.asset(b).favorite and fake.count("/assets", "PUT") == 1
    assert set(manifest_of(retained(broker), "hall")) == {b}
    bridge.close()


def test_sent_photo_is_a_guest_until_its_time(broker: Mosquitto, fake: FakeImmich) -> None:
    mine = fake.add_favorites(1)[0]
    sent = [fake.add_asset(), fake.add_asset()]  # in no source of the frame
    cfg = config(broker, fake, guest_days=2)
    bridge = Bridge(cfg)
    bridge.tick()  # the first poll
    obs = Observer(broker, EVENT)
    for asset_id in sent:
        publish(broker, "homeassistant", f"{CMD}/show", asset_id)
    assert bridge.pump(lambda: _manifest(broker) == {mine, *sent})
    assert [e["event"] for e in _events(obs)] == ["sent", "sent"]
    held = json.loads(retained(broker)[f"{BASE}/kitchen/guests"])
    assert set(held["guests"]) == set(sent)
    assert bridge.service.metrics.get("frame_guests", frame="kitchen") == 2
    # a restart keeps them, and publishes nothing new
    bridge.close()
    bridge = Bridge(cfg, now=bridge.now + timedelta(days=1))
    before = _manifest_publishes(bridge)
    bridge.tick()
    assert _manifest(broker) == {mine, *sent} and _manifest_publishes(bridge) == before
    # their time comes: they leave (2 of 3 pictures, past max_removal) without being held
    bridge.tick(86400 + 1)
    assert _manifest(broker) == {mine}
    assert bridge.service.metrics.get("held_removals", frame="kitchen") == 0
    assert f"{BASE}/kitchen/guests" not in retained(broker)
    bridge.close()


def test_guests_whose_time_came_while_the_bridge_was_down_leave_at_start(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    mine = fake.add_favorites(1)[0]
    sent = [fake.add_asset() for _ in range(3)]
    cfg = config(broker, fake)
    bridge = Bridge(cfg)
    bridge.tick()
    for asset_id in sent:
        publish(broker, "homeassistant", f"{CMD}/show", asset_id)
    assert bridge.pump(lambda: _manifest(broker) == {mine, *sent})
    bridge.close()
    bridge = Bridge(cfg, now=bridge.now + timedelta(days=8))
    bridge.tick()
    assert _manifest(broker) == {mine}  # 3 of 4 pictures leave, none held back
    assert bridge.service.metrics.get("held_removals", frame="kitchen") == 0
    bridge.close()


def test_sending_an_unknown_photo_is_an_error_event(broker: Mosquitto, fake: FakeImmich) -> None:
    mine = fake.add_favorites(1)[0]
    bridge = Bridge(config(broker, fake))
    bridge.tick()  # the first poll
    obs = Observer(broker, EVENT)
    publish(broker, "homeassistant", f"{CMD}/show", "0" * 8 + "-0000-4000-8000-" + "0" * 12)
    publish(broker, "homeassistant", f"{CMD}/show", mine)  # in the manifest: the frame's job
    assert bridge.pump(lambda: bool(_events_seen(obs)))
    bridge.barrier()
    assert [(e["event"], e.get("code")) for e in _events(obs)] == [("error", "send_failed")]
    assert _manifest(broker) == {mine}
    bridge.close()


def test_scopes_for_actions_are_asked_only_when_a_frame_enables_one(broker: Mosquitto) -> None:
    with FakeImmich(permissions=("asset.read", "asset.view", "tag.read")) as fake:
        plain = Service(config(broker, fake))  # no action: the read scopes do
        plain.start(datetime.now(UTC))
        plain.close()
        wanted = (("like", ["asset.update"]), ("hide", ["tag.asset", "tag.create"]))
        for press, scopes in wanted:
            cfg = config(broker, fake, frames=[frame(long_press=press, exclude=SKIP)])
            with pytest.raises(StartupError) as err:
                Service(cfg).start(datetime.now(UTC))
            for scope in [*scopes, "user.read"]:
                assert f"{scope} (needed by frames.kitchen.long_press: {press})" in str(err.value)

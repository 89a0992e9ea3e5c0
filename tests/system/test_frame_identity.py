"""A frame's MQTT identity on the real broker: its client id is bound to its user name, so no
other user can take its connection over; two boards configured with one frame id are found
from the boot ids in their states and reported (log, `/healthz`, `<base>/bridge/state`)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.kit import framekit as kit
from tests.kit.bridgekit import BASE, Bridge, Observer, config, retained
from tests.kit.broker import USERS, Mosquitto
from tests.kit.fakes.immich import FakeImmich
from titano_app.frame.app import App
from titano_app.sim.device import SimDevice

FRAME = "kitchen"
STATUS = f"{BASE}/{FRAME}/status"


def _board(broker: Mosquitto, tmp: Path, name: str, clock: kit.Clock) -> App:
    settings = kit.frame_settings(FRAME, USERS[FRAME], broker.port)
    device = SimDevice(settings, tmp / f"card-{name}", tmp / f"screen-{name}.png", clock=clock)
    return App(device, clock)


def _connect_as(broker: Mosquitto, user: str, client_id: str) -> tuple[mqtt.Client, bool]:
    """A client logging in as `user` but asking for `client_id`; whether the broker let it in."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.username_pw_set(user, broker.users[user])
    rc = client.connect(broker.host, broker.port)
    client.loop_start()
    # QoS 1 and acknowledged: the broker has taken the connection in by now.
    info = client.publish(f"{BASE}/{user}/event", b"{}", qos=1)
    info.wait_for_publish(10)
    return client, rc == 0 and info.is_published()


def test_no_other_user_can_take_a_frames_connection_over(broker: Mosquitto, tmp_path: Path) -> None:
    clock = kit.Clock()
    app = _board(broker, tmp_path, "a", clock)
    assert kit.tick_until(app, lambda: app.link.connected)
    watch = Observer(broker, STATUS)
    strangers = [_connect_as(broker, user, FRAME) for user in ("homeassistant", "hall")]
    assert all(ok for _, ok in strangers)  # they get in, under their own names
    publisher = kit.Publisher(
        broker.host, broker.port, broker.alias("homeassistant"), USERS["homeassistant"], FRAME
    )
    assert kit.barrier(app, publisher)  # the frame took every message sent after the strangers
    for _ in range(20):  # and it ticks on: a lost connection would show here
        app.tick(app.clock())
    assert app.link.connected and app.link.connects == 1
    seen = [(p, r) for t, p, r in watch.take() if t == STATUS]
    assert b"offline" not in [p for p, _ in seen]  # no last will: never dropped
    assert [p for p, r in seen if not r] == []  # no new `online`: never reconnected
    for client, _ in strangers:
        client.disconnect()
        client.loop_stop()
    publisher.close()
    watch.close()


def test_two_boards_with_one_frame_id_are_reported(
    broker: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge")
    with FakeImmich() as fake:
        fake.add_favorites(2)
        bridge = Bridge(config(broker, fake))
        bridge.step()
        clock = kit.Clock()
        boards = [_board(broker, tmp_path, name, clock) for name in ("a", "b")]

        def reported() -> bool:
            for app in boards:  # each connects in turn and takes the other's connection over
                app.tick(app.clock())
            clock.advance(500)
            bridge.service.handle_events(0)
            bridge.tick()
            return bool(bridge.service.health()["frames"][FRAME]["shared_id"])

        assert bridge.pump(reported, timeout=60)
        row = bridge.service.health()["frames"][FRAME]
        assert row["boards"] == 2 and row["shared_id"] is True
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("frame kitchen: two boards use this frame id" in w for w in warnings)
        bridge.barrier()
        state = json.loads(
            retained(broker, f"{BASE}/bridge/state", state=True)[f"{BASE}/bridge/state"]
        )
        assert state["frames"][FRAME]["shared_id"] is True
        assert bridge.service.metrics.get("frame_boards", frame=FRAME) == 2
        bridge.close()

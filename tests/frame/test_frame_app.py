"""The frame app on CPython against a real Mosquitto and a picture server: sync by digest, the
card, the screen, commands (through the real `mosquitto_pub`), touches, state and events."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit import framekit as kit
from tests.kit.broker import USERS, Mosquitto
from tests.kit.mqttc import Collector
from tests.kit.pictureserver import PictureServer
from titano_app.frame import VERSION
from titano_app.frame.app import App
from titano_app.sim.device import SimDevice

FRAME = "kitchen"
BARRIER = "barrier"  # the event the rig sends through the app's own connection


class Rig:
    def __init__(self, broker: Mosquitto, tmp: Path) -> None:
        self.broker = broker
        self.tmp = tmp
        self.server = PictureServer(USERS[FRAME])
        self.pub = kit.Publisher(broker.host, broker.port, "bridge", USERS["bridge"], FRAME)
        self.watch = Collector(broker, "homeassistant")
        assert self.watch.wait_connected()
        self.watch.subscribe(f"titanoframe/{FRAME}/#")
        self.clock = kit.Clock()
        self.pictures: dict[str, str] = {}
        self.app: App | None = None

    def add(self, n: int, version: str = "00000001") -> str:
        pid = kit.picture_id(n)
        self.server.pictures[pid] = kit.picture_bytes(n * 7 + int(version, 16))
        self.pictures[pid] = version
        return pid

    def publish(self) -> None:
        self.pub.manifest(self.pictures, self.server.url)

    def start(self) -> App:
        settings = kit.frame_settings(FRAME, USERS[FRAME], self.broker.port)
        card, png = self.tmp / "card", self.tmp / "screen.png"
        self.device = SimDevice(settings, card, png, clock=self.clock)
        self.app = App(self.device, self.clock)
        return self.app

    def synced(self, seconds: float = 20) -> bool:
        assert self.app is not None
        app = self.app
        want = set(self.pictures)
        return kit.tick_until(
            app, lambda: app.steps is None and kit.card_pictures(self.card) == want, seconds
        )

    @property
    def card(self) -> Path:
        return self.tmp / "card"

    def states(self) -> list[dict[str, object]]:
        with self.watch.lock:
            return [json.loads(p) for t, p, _ in self.watch.messages if t.endswith("/state")]

    def events(self) -> list[dict[str, object]]:
        with self.watch.lock:
            found = [json.loads(p) for t, p, _ in self.watch.messages if t.endswith("/event")]
        return [e for e in found if e.get("event") != BARRIER]

    def barrier(self) -> None:
        """The app has acted on every message sent to it before now, and what it published
        meanwhile has reached the watcher: a marker through the broker to the app, then an
        event of the rig's own sent on the app's connection, after everything the app sent."""
        assert self.app is not None
        app = self.app
        assert kit.barrier(app, self.pub), "the app never took the barrier command"
        token = uuid.uuid4().hex
        marker = json.dumps({"event": BARRIER, "id": token})
        assert app.link.publish(app.topics.event, marker, False, self.clock())
        assert self.watch.wait_for(lambda seen: any(token.encode() in p for _, p, _ in seen))

    def settle(self, seconds: float = 1.5) -> None:
        kit.tick_until(self.app, lambda: False, seconds)  # type: ignore[arg-type]

    def close(self) -> None:
        self.watch.close()
        self.pub.close()
        self.server.close()


@pytest.fixture
def rig(broker: Mosquitto, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(broker, tmp_path)
    yield r
    r.close()


def test_syncs_the_manifest_shows_a_picture_and_follows_changes(rig: Rig) -> None:
    ids = [rig.add(n) for n in range(6)]
    rig.publish()
    app = rig.start()
    assert rig.synced()
    assert app.show.picture in ids
    assert rig.device.screen.png.exists()
    assert len(rig.server.requests) == 6
    # un-favourite one, edit another: one removed, one downloaded again, nothing else fetched
    del rig.pictures[ids[0]]
    rig.add(1, "00000002")
    rig.publish()
    assert rig.synced()
    assert len(rig.server.requests) == 7
    assert not list(rig.card.glob(f"p/*/*/{ids[1]}.00000001.bmp"))
    assert list(rig.card.glob(f"p/*/*/{ids[1]}.00000002.bmp"))
    rig.settle()
    assert {"event": "synced", "added": 1, "removed": 1, "pages": 1} in rig.events()
    state = rig.states()[-1]
    assert state["count"] == 5 and state["sync"] == "idle" and state["rev"] == app.summary.rev  # type: ignore[union-attr]
    assert state["version"] == VERSION
    assert isinstance(state["synced_at"], int) and isinstance(state["shown_at"], int)


def test_boot_shows_a_picture_from_the_card_before_the_network(rig: Rig) -> None:
    rig.add(1)
    rig.publish()
    rig.start()
    assert rig.synced()
    rig.broker.stop()
    app = rig.start()  # a reboot with no broker: the picture is there at once
    assert app.show.picture == next(iter(rig.pictures))
    assert rig.device.shown
    screen = rig.device.screen
    assert screen._icon not in screen._group
    app.tick(app.clock())  # the first tick, the link down from the start: the icon shows it
    assert screen._icon in screen._group and app.live["sync"] == "offline"


def _mosquitto_pub(rig: Rig, command: str, payload: str | None, qos: int = 0) -> None:
    args = ["mosquitto_pub", "-h", rig.broker.host, "-p", str(rig.broker.port), "-u",
            "homeassistant", "-P", USERS["homeassistant"], "-q", str(qos), "-t",
            f"titanoframe/{FRAME}/cmd/{command}"]  # fmt: skip
    args += ["-n"] if payload is None else ["-m", payload]
    subprocess.run(args, check=True, timeout=10)


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto_pub")
def test_commands_from_mosquitto_pub_change_state_and_screen(rig: Rig) -> None:
    for n in range(4):
        rig.add(n)
    rig.publish()
    app = rig.start()
    assert rig.synced()
    screen = rig.device.screen
    before, draws = app.show.picture, screen.draws
    _mosquitto_pub(rig, "next", "PRESS")
    assert kit.tick_until(app, lambda: app.show.picture != before)
    assert screen.draws > draws
    # an empty payload (a retained command being cleared) runs nothing and is no error
    before, draws = app.show.picture, screen.draws
    for command in ("next", "brightness", "frobnicate"):
        _mosquitto_pub(rig, command, None, qos=1)  # as the bridge clears them: acknowledged
    rig.barrier()
    assert (app.show.picture, screen.draws) == (before, draws)
    assert not [e for e in rig.events() if e["event"] == "error"]
    _mosquitto_pub(rig, "brightness", "30")
    assert kit.tick_until(app, lambda: screen.brightness == 0.3)
    _mosquitto_pub(rig, "pause", "ON")
    _mosquitto_pub(rig, "display", "OFF")
    assert kit.tick_until(app, lambda: screen.brightness == 0.0)
    rig.settle()
    state = rig.states()[-1]
    assert (state["brightness"], state["paused"], state["display"]) == (30, True, "OFF")
    shown = app.show.shown
    rig.clock.advance(3600_000)  # paused and asleep: no slide however long
    rig.settle(0.3)
    assert app.show.shown == shown
    _mosquitto_pub(rig, "brightness", "250", qos=1)
    _mosquitto_pub(rig, "frobnicate", "1", qos=1)
    rig.barrier()
    codes = [e.get("code") for e in rig.events() if e["event"] == "error"]
    assert codes.count("bad_command") == 2
    assert rig.states()[-1]["brightness"] == 30
    # settings survive a reboot (they live on the card)
    app2 = rig.start()
    assert app2.settings["brightness"] == 30 and app2.settings["paused"] is True


def test_touch_thirds_and_auto_brightness(rig: Rig) -> None:
    for n in range(3):
        rig.add(n)
    rig.publish()
    app = rig.start()
    assert rig.synced()
    first = app.show.picture
    rig.device.press(470)  # right third: next
    rig.settle(0.3)
    second = app.show.picture
    assert second != first
    rig.device.press(10)  # left third: previous
    rig.settle(0.3)
    assert app.show.picture == first
    rig.device.press(240)  # middle: pause
    rig.settle(1.2)
    assert app.settings["paused"] is True
    actions = [e["action"] for e in rig.events() if e["event"] == "touch"]
    assert actions == ["next", "previous", "pause"]
    rig.pub.command("auto_brightness", "ON")
    rig.device.light_level = 65535
    for _ in range(40):  # smoothing: many readings to get there
        rig.clock.advance(1000)
        app.tick(rig.clock())
    assert app.settings["brightness"] >= 90  # type: ignore[operator]
    level = app.settings["brightness"]
    rig.device.light_level = 64000  # a small change: hysteresis keeps the level
    for _ in range(10):
        rig.clock.advance(1000)
        app.tick(rig.clock())
    assert app.settings["brightness"] == level


def test_show_command_and_a_bad_summary(rig: Rig) -> None:
    ids = [rig.add(n) for n in range(3)]
    rig.publish()
    app = rig.start()
    assert rig.synced()
    target = next(i for i in ids if i != app.show.picture)
    rig.pub.command("show", target)
    assert kit.tick_until(app, lambda: app.show.picture == target, 5)
    rig.pub._send(f"titanoframe/{FRAME}/manifest", b"{not json")
    rig.settle()
    assert any(e.get("code") == "bad_manifest" for e in rig.events())
    assert kit.card_pictures(rig.card) == set(ids)


def test_long_press_is_a_hold_event_for_the_bridge_and_notices_show_briefly(rig: Rig) -> None:
    for n in range(3):
        rig.add(n)
    rig.publish()
    app = rig.start()
    assert rig.synced()
    shown = app.show.picture
    rig.device.hold(240)  # the middle third: a tap there would pause
    app.tick(rig.clock())
    rig.clock.advance(1000)
    app.tick(rig.clock())
    rig.device.release()
    rig.settle(0.3)
    assert app.settings["paused"] is False and app.show.picture == shown
    rig.pub.command("like", "PRESS")  # the bridge's: the frame does nothing
    rig.pub.command("hide", "PRESS")
    rig.pub.command("notice", "liked")  # the bridge's answer
    assert kit.tick_until(app, lambda: rig.device.screen.notice_word == "liked", 5)
    rig.clock.advance(3000)
    app.tick(rig.clock())
    assert rig.device.screen.notice_word is None
    rig.barrier()
    touches = [e for e in rig.events() if e["event"] == "touch"]
    assert touches == [{"event": "touch", "action": "hold", "picture": shown}]
    assert [e for e in rig.events() if e["event"] == "error"] == []
    assert rig.device.notices == ["liked", None]


def test_a_picture_sent_to_the_frame_is_shown_as_soon_as_it_is_downloaded(rig: Rig) -> None:
    for n in range(3):
        rig.add(n)
    rig.publish()
    app = rig.start()
    assert rig.synced()
    guest = kit.picture_id(7)
    rig.pub.command("show", guest)  # before the bridge has put it in the manifest
    rig.barrier()
    assert app.show.wanted == guest
    rig.add(7)
    rig.publish()
    # the tick that lands it on the card draws it
    assert kit.tick_until(app, lambda: guest in kit.card_pictures(rig.card), 20)
    assert app.show.picture == guest and rig.device.shown[-1].endswith(".bmp")
    rig.barrier()
    assert [e for e in rig.events() if e["event"] == "error"] == []
    assert {"event": "shown", "picture": guest} in rig.events()


def test_previous_after_show_returns_to_the_picture_before_it(rig: Rig) -> None:
    ids = [rig.add(n) for n in range(5)]
    rig.publish()
    app = rig.start()
    assert rig.synced()
    rig.pub.command("next", "PRESS")
    assert kit.tick_until(app, lambda: app.show.shown >= 2, 5)
    before = app.show.picture
    target = next(i for i in ids if i != before)
    rig.pub.command("show", target)
    assert kit.tick_until(app, lambda: app.show.picture == target, 5)
    rig.pub.command("previous", "PRESS")
    assert kit.tick_until(app, lambda: app.show.picture != target, 5)
    assert app.show.picture == before
    rig.pub.command("next", "PRESS")
    assert kit.tick_until(app, lambda: app.show.picture != before, 5)
    assert app.show.picture == target

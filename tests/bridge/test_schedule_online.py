"""Schedules hold across reboots: a frame that comes online inside a scheduled night is sent
the schedule's current state at once, and a manual change holds until the next scheduled step.

Real Mosquitto, the bridge on a mocked clock, and the frame app on CPython (its settings live
on its simulated card, so a reboot comes back with the display as it was).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.config import ScheduleEntry, Source
from tests.kit import framekit as kit
from tests.kit.bridgekit import BASE, Bridge, Observer, config, frame
from tests.kit.broker import USERS, Mosquitto
from tests.kit.mqttc import Collector, publish
from titano_app.frame.app import App
from titano_app.sim.device import SimDevice

NIGHT = ScheduleEntry(at=(23, 0), commands=(("display", "OFF"), ("brightness", "10")))
MORNING = ScheduleEntry(at=(7, 0), commands=(("display", "ON"), ("brightness", "80")))
EVENING = datetime(2025, 11, 23, 22, 50, tzinfo=UTC)
STATE, STATUS = f"{BASE}/kitchen/state", f"{BASE}/kitchen/status"
DISPLAY = f"{BASE}/kitchen/cmd/display"


class Rig:
    def __init__(self, broker: Mosquitto, tmp: Path) -> None:
        self.broker, self.tmp = broker, tmp
        photos = tmp / "photos"
        photos.mkdir()
        schedule = (NIGHT, MORNING)
        folder = (Source("folder", str(photos)),)
        self.bridge = Bridge(
            config(broker, None, frames=[frame("kitchen", folder, schedule=schedule)]), EVENING
        )
        self.watch = Collector(broker, "homeassistant")
        assert self.watch.wait_connected()
        self.watch.subscribe(STATE)
        self.watch.subscribe(STATUS)
        self.clock = kit.Clock()
        self.app: App | None = None

    def boot(self) -> App:
        """Power the frame on (again): a new app on the same card."""
        settings = kit.frame_settings("kitchen", USERS["kitchen"], self.broker.port)
        device = SimDevice(settings, self.tmp / "card", self.tmp / "screen.png", clock=self.clock)
        self.app = App(device, self.clock)
        return self.app

    def seen(self) -> int:
        with self.watch.lock:
            return len(self.watch.messages)

    def states_since(self, mark: int) -> list[dict[str, object]]:
        with self.watch.lock:
            found = self.watch.messages[mark:]
        return [json.loads(p) for t, p, _ in found if t == STATE and p]

    def run_until(self, done: object, seconds: float = 20.0) -> bool:
        """Tick the frame and the bridge (its clock standing still) until `done()`."""
        assert self.app is not None and callable(done)

        def step() -> bool:
            self.bridge.service.handle_events(0)
            self.bridge.service.tick(self.bridge.now)
            return bool(done())

        return kit.tick_until(self.app, step, seconds)

    def close(self) -> None:
        self.watch.close()
        self.bridge.close()


@pytest.fixture
def rig(broker: Mosquitto, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(broker, tmp_path)
    yield r
    r.close()


def _display(states: list[dict[str, object]]) -> list[object]:
    return [s.get("display") for s in states]


def test_a_frame_rebooting_in_a_scheduled_night_goes_dark_as_it_connects(rig: Rig) -> None:
    commands = Observer(rig.broker, DISPLAY)
    mark = rig.seen()
    rig.boot()
    assert rig.run_until(lambda: "ON" in _display(rig.states_since(mark)))
    rig.bridge.barrier()  # the bridge has acted on the frame's `online`, sent before its state
    # 23:00 passes while the frame is down (it stopped here, mid-reboot): the scheduled OFF
    # goes to a connection nobody reads any more, and the card still says the display is on.
    rig.bridge.tick(20 * 60)
    # ON: the schedule's state at 22:50 (the morning's), sent as the frame came online; OFF: 23:00.
    assert [p for _, p, _ in commands.take()] == [b"ON", b"OFF"]
    mark = rig.seen()
    rig.boot()
    assert rig.run_until(lambda: "OFF" in _display(rig.states_since(mark)))
    states = rig.states_since(mark)
    # Dark from the frame's first or second state after it connected (states go out on every
    # change, at most once a second): the schedule's state was sent as it came online.
    first_off = _display(states).index("OFF")
    assert first_off <= 1, states
    assert rig.run_until(lambda: rig.states_since(mark)[-1].get("brightness") == 10)
    assert [p for _, p, _ in commands.take()] == [b"OFF"]
    commands.close()


def test_a_manual_change_holds_until_the_next_scheduled_step(rig: Rig) -> None:
    commands = Observer(rig.broker, DISPLAY)
    rig.bridge.tick(20 * 60)  # 23:10: the night has begun, the frame is not up yet
    mark = rig.seen()
    rig.boot()
    assert rig.run_until(lambda: "OFF" in _display(rig.states_since(mark)))
    # Someone turns the screen on by hand (Home Assistant), then the frame reboots.
    publish(rig.broker, "homeassistant", DISPLAY, "ON")
    assert rig.run_until(lambda: _display(rig.states_since(mark))[-1:] == ["ON"])
    assert [p for _, p, _ in commands.take()] == [b"OFF", b"OFF", b"ON"]
    mark = rig.seen()
    app = rig.boot()
    assert rig.run_until(lambda: app.link.connects >= 1 and rig.states_since(mark) != [])
    rig.bridge.barrier()  # the bridge has acted on the frame's `online`
    assert commands.take() == []  # the manual ON holds: nothing sent
    assert _display(rig.states_since(mark))[-1] == "ON"
    # The next scheduled step (the next night, past the morning) ends the manual hold.
    rig.bridge.tick(24 * 3600)
    assert [p for _, p, _ in commands.take()] == [b"OFF"]
    mark = rig.seen()
    rig.boot()
    assert rig.run_until(lambda: "OFF" in _display(rig.states_since(mark)))
    assert [p for _, p, _ in commands.take()] == [b"OFF"]
    commands.close()

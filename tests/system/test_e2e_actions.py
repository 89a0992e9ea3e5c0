"""End to end, from the frame into Immich and onto the frame from anywhere: fake Immich,
bridge, real Mosquitto, renderer and the simulated frame.

A long press hides the picture shown (the tag in Immich, the picture off the card and the
screen) or refuses a partner's photo (an error event, no write at Immich); a photo sent with
`python -m bridge send` is on the screen on the tick it lands on the card and leaves when its
time has come (the bridge runs in-process there, on a clock the test moves).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from common.config import load_config
from tests.kit import ROOT
from tests.kit import framekit as kit
from tests.kit.bridgekit import Bridge
from tests.kit.broker import Mosquitto
from tests.kit.e2ekit import FRAME, World
from tests.kit.fakes.immich import FakeImmich

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto-clients"),
]


@pytest.fixture
def hiding(broker: Mosquitto, tmp_path: Path) -> Iterator[World]:
    w = World(broker, tmp_path, frame_extra="long_press: hide")
    yield w
    w.close()


def _writes(fake: FakeImmich) -> int:
    return fake.count("/assets", "PUT") + fake.count("/tags", "PUT") + fake.count("/tags", "POST")


def _long_press(world: World) -> None:
    """A finger held on the middle of the screen for a second, then lifted."""
    app = world.app
    world.device.hold(240)
    app.tick(app.clock())
    assert isinstance(app.clock, kit.Clock)
    app.clock.advance(1000)
    app.tick(app.clock())
    world.device.release()
    app.tick(app.clock())


def test_long_press_hides_the_photo_in_immich_and_it_leaves_the_slideshow(
    hiding: World,
) -> None:
    world, fake, app = hiding, hiding.fake, hiding.app
    ids = set(fake.add_favorites(3))
    assert kit.tick_until(app, lambda: world.on_card() == ids, 60), world.logs()
    assert kit.tick_until(app, lambda: app.show.picture is not None, 10)
    held = str(app.show.picture)
    _long_press(world)
    assert kit.tick_until(app, lambda: held not in world.on_card(), 40), world.logs()
    skip = [t.id for t in fake.tags.values() if t.name == "frame-skip"]
    assert len(skip) == 1 and skip[0] in fake.asset(held).tag_ids
    assert app.show.picture in ids - {held}
    assert kit.tick_until(app, lambda: "hidden" in world.device.notices, 10)
    assert world.events("hide") == [{"event": "hide", "picture": held, "tag": "frame-skip"}]
    assert fake.asset(held).favorite  # nothing else changed


def test_a_partners_photo_is_refused_with_an_error_and_no_write(
    broker: Mosquitto, tmp_path: Path
) -> None:
    world = World(broker, tmp_path, frame_extra="long_press: like")
    try:
        fake, app = world.fake, world.app
        mine = fake.add_favorites(1)[0]
        theirs = fake.add_asset(favorite=True, owner=fake.add_partner())
        assert kit.tick_until(app, lambda: world.on_card() == {mine, theirs}, 60), world.logs()
        world.app.command("show", theirs, app.clock())
        assert app.show.picture == theirs
        _long_press(world)
        assert kit.tick_until(app, lambda: bool(world.events("error")), 20), world.logs()
        (error,) = world.events("error")
        assert error["code"] == "not_owner" and "partner" in str(error["detail"])
        assert kit.tick_until(app, lambda: "error" in world.device.notices, 10)
        assert _writes(fake) == 0
        assert world.on_card() == {mine, theirs} and fake.asset(theirs).favorite
    finally:
        world.close()


def test_a_photo_sent_from_the_cli_is_shown_when_it_lands_and_leaves_at_its_time(
    broker: Mosquitto, tmp_path: Path
) -> None:
    world = World(broker, tmp_path, bridge_process=False)
    bridge = Bridge(load_config(world.config), now=datetime.now(UTC))
    try:
        fake, app = world.fake, world.app
        ids = set(fake.add_favorites(2))
        guest = fake.add_asset()  # in no source of the frame

        def ticking(done: Callable[[], bool]) -> Callable[[], bool]:
            def step() -> bool:
                bridge.service.handle_events(0)
                bridge.tick()
                return done()

            return step

        assert kit.tick_until(app, ticking(lambda: world.on_card() == ids), 60)
        args = [sys.executable, "-m", "bridge", "--config", str(world.config), "send", FRAME]
        cli = subprocess.Popen([*args, guest], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        # the tick that lands it on the card draws it
        assert kit.tick_until(app, ticking(lambda: guest in world.on_card()), 60), world.logs()
        assert app.show.picture == guest and guest in world.device.shown[-1]
        assert kit.tick_until(app, ticking(lambda: cli.poll() is not None), 30)
        out, _ = cli.communicate()
        assert cli.returncode == 0 and out.startswith(f"sent {guest}")
        # it stays in the slideshow with the others, then leaves after bridge.guest_days (7)
        bridge.tick(6 * 86400)
        assert kit.tick_until(app, ticking(lambda: world.on_card() == {*ids, guest}), 10)
        bridge.tick(86400 + 1)
        assert kit.tick_until(app, ticking(lambda: world.on_card() == ids), 40)
        assert app.show.picture in ids
        metrics = bridge.service.metrics
        assert metrics.get("held_removals", frame=FRAME) == 0
    finally:
        bridge.close()
        world.close()

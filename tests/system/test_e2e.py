"""End to end: fake Immich -> bridge -> real Mosquitto -> simulated frame <- renderer.

The bridge and the renderer run as their own processes (`python -m bridge`, `python -m
renderer`), the frame app in-process on the simulator, so the test can look at its card and
screen. A favourite appears on the screen exactly as the renderer draws it; an un-favourite
leaves the card; an edit is downloaded again; `mosquitto_pub` commands change state and screen.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from tests.kit import framekit as kit
from tests.kit.broker import USERS, Mosquitto
from tests.kit.e2ekit import FRAME, World

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto-clients"),
]


@pytest.fixture
def world(broker: Mosquitto, tmp_path: Path) -> Iterator[World]:
    w = World(broker, tmp_path)
    yield w
    w.close()


def _difference(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3


def _pub(world: World, command: str, payload: str | None) -> None:
    args = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(world.broker.port), "-u",
            "homeassistant", "-P", USERS["homeassistant"], "-t",
            f"titanoframe/{FRAME}/cmd/{command}"]  # fmt: skip
    subprocess.run([*args, *(["-n"] if payload is None else ["-m", payload])], check=True)


def test_favourites_reach_the_screen_and_follow_immich(world: World) -> None:
    fake, app = world.fake, world.app
    first, second = fake.add_favorites(2)
    assert kit.tick_until(app, lambda: world.on_card() == {first, second}, 60), world.logs()
    assert kit.tick_until(app, lambda: app.show.picture is not None, 10)
    screen = Image.open(world.device.screen.png).convert("RGB")
    assert _difference(screen, world.rendered(str(app.show.picture))) < 6
    # un-favourite: the picture leaves the card
    fake.unfavorite(first)
    assert kit.tick_until(app, lambda: world.on_card() == {second}, 40), world.logs()
    # an edit: downloaded again under its new version
    old = {p.name for p in kit.card_files(world.tmp / "card")}
    fake.edit(second)

    def new() -> set[str]:
        return {p.name for p in kit.card_files(world.tmp / "card")}

    assert kit.tick_until(app, lambda: new() != old and len(new()) == 1, 40), world.logs()
    # commands through the real CLI change the state topic and the screen
    fake.add_favorites(1)
    assert kit.tick_until(app, lambda: len(world.on_card()) == 2, 40), world.logs()
    before, draws = app.show.picture, world.device.screen.draws
    _pub(world, "next", "PRESS")
    assert kit.tick_until(app, lambda: app.show.picture != before, 10)
    assert world.device.screen.draws > draws
    _pub(world, "brightness", "40")
    _pub(world, "pause", "ON")
    _pub(world, "display", "OFF")
    assert kit.tick_until(app, lambda: world.last_state().get("display") == "OFF", 10)
    state = world.last_state()
    assert (state["brightness"], state["paused"], state["picture"]) == (40, True, app.show.picture)
    assert world.device.screen.brightness == 0.0
    assert ImageStat.Stat(Image.open(world.device.screen.png).convert("L")).mean[0] < 1

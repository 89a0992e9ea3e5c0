"""Casting end to end: an image posted to the renderer (as its own process) is announced over a
real Mosquitto and shown by the simulated frame for its seconds; then the slideshow goes on
with the picture that was next. Hostile casts are refused with a 4xx and reach no screen and no
topic; a cast the frame cannot download is an error event and changes nothing.
"""

from __future__ import annotations

import copy
import io
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.kit import framekit as kit
from tests.kit.broker import Mosquitto
from tests.kit.e2ekit import CAST_TOKEN, FRAME, World
from tests.kit.mqttc import Collector, publish

pytestmark = pytest.mark.slow


@pytest.fixture
def world(broker: Mosquitto, tmp_path: Path) -> Iterator[World]:
    w = World(broker, tmp_path)
    yield w
    w.close()


class Casts:
    """What goes over the cast and event topics, seen as Home Assistant sees them."""

    def __init__(self, world: World) -> None:
        self.watch = Collector(world.broker, "homeassistant")
        assert self.watch.wait_connected()
        self.watch.subscribe(f"titanoframe/{FRAME}/cast")
        self.watch.subscribe(f"titanoframe/{FRAME}/event")

    def on(self, leaf: str) -> list[dict[str, object]]:
        with self.watch.lock:
            found = [p for t, p, _ in self.watch.messages if t.endswith("/" + leaf)]
        return [json.loads(p) for p in found]


def jpeg(colour: tuple[int, int, int] = (220, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (800, 600), colour).save(out, "JPEG")
    return out.getvalue()


def cast(world: World, body: bytes, token: str = CAST_TOKEN, **kwargs: object) -> requests.Response:
    url = f"http://127.0.0.1:{world.http_port}/v1/frames/{kwargs.pop('frame', FRAME)}/cast"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": kwargs.pop("type", "image/jpeg")}
    return requests.post(url, data=body, headers=headers, params=kwargs, timeout=30)  # type: ignore[arg-type]


def synced_slideshow(world: World, n: int) -> set[str]:
    ids = set(world.fake.add_favorites(n))
    assert kit.tick_until(world.app, lambda: world.on_card() == ids, 60), world.logs()
    assert kit.tick_until(world.app, lambda: world.app.show.picture is not None, 10)
    return ids


def next_picture(world: World) -> str:
    """The picture the slideshow shows next, read from a copy of its shuffle."""
    show, state = world.app.show, random.getstate()
    try:
        index = copy.deepcopy(show._shuffle).next()
    finally:
        random.setstate(state)  # the copy drew from the same generator: give it back
    assert index is not None
    entry = world.app.store.nth(index)
    assert entry is not None
    return entry[0]


def casting(world: World) -> bool:
    return world.device.shown[-1:] != [] and "/tmp/cast" in world.device.shown[-1]


def test_a_cast_is_shown_for_its_seconds_then_the_slideshow_resumes(world: World) -> None:
    app, clock = world.app, world.app.clock
    assert isinstance(clock, kit.Clock)
    ids = synced_slideshow(world, 3)
    casts = Casts(world)
    before, upcoming, draws = app.show.picture, next_picture(world), len(world.device.shown)
    r = cast(world, jpeg(), seconds="30")
    assert r.status_code == 200, r.text
    assert kit.tick_until(app, lambda: casting(world), 20), world.logs()
    # on the screen as the renderer drew it: the red image, not a picture of the slideshow
    screen = Image.open(world.device.screen.png).convert("RGB")
    red = screen.getpixel((240, 160))
    assert isinstance(red, tuple) and red[0] > 180 and red[1] < 80, red
    assert len(world.device.shown) == draws + 1
    assert kit.tick_until(app, lambda: bool(casts.on("event")), 10)
    assert {"event": "cast", "id": r.json()["id"], "seconds": 30} in casts.on("event")
    # never on the card as a picture, and the slideshow waits while it is shown
    assert world.on_card() == ids and app.show.picture == before
    clock.advance(29_000)
    app.tick(clock())
    assert casting(world) and app.show.picture == before
    # its time is up: the picture that was next before the cast
    clock.advance(1_000)
    assert kit.tick_until(app, lambda: not casting(world), 10)
    assert app.show.picture == upcoming
    assert world.device.shown[-1].endswith(".bmp") and upcoming in world.device.shown[-1]
    assert len(world.device.shown) == draws + 2
    assert world.on_card() == ids


def test_a_touch_ends_a_cast_and_a_paused_frame_returns_to_its_picture(world: World) -> None:
    app, clock = world.app, world.app.clock
    assert isinstance(clock, kit.Clock)
    synced_slideshow(world, 3)
    app.command("pause", "ON", clock())
    before = app.show.picture
    assert before is not None
    assert cast(world, jpeg(), seconds="10").status_code == 200
    assert kit.tick_until(app, lambda: casting(world), 20), world.logs()
    clock.advance(10_000)
    assert kit.tick_until(app, lambda: not casting(world), 10)
    assert app.show.picture == before and before in world.device.shown[-1]
    # a second cast, ended early by a press of `next`: the cast is over, nothing comes back
    assert cast(world, jpeg((20, 20, 220)), seconds="60").status_code == 200
    assert kit.tick_until(app, lambda: casting(world), 20), world.logs()
    app.command("next", "PRESS", clock())
    assert not casting(world)
    after, draws = app.show.picture, len(world.device.shown)
    clock.advance(60_000)
    app.tick(clock())
    assert app.show.picture == after and len(world.device.shown) == draws


def test_hostile_casts_reach_no_screen_and_no_topic(world: World) -> None:
    app = world.app
    synced_slideshow(world, 2)
    casts = Casts(world)
    draws = len(world.device.shown)
    bomb = io.BytesIO()
    Image.new("1", (6000, 4200)).save(bomb, "PNG")  # 25.2 million pixels in a few kilobytes
    hostile = [
        (cast(world, jpeg(), token=""), 401),
        (cast(world, jpeg(), token="wrong"), 401),
        (cast(world, jpeg(), frame="garage"), 404),
        (cast(world, b"\xff\xd8\xff" + bytes(10 << 20)), 413),
        (cast(world, bomb.getvalue(), type="image/png"), 413),
        (cast(world, b"\xff\xd8\xff" + b"junk" * 1000), 400),
        (cast(world, b"GIF89a" + bytes(64), type="image/gif"), 415),
        (cast(world, jpeg(), seconds="0"), 400),
    ]
    for response, status in hostile:
        assert response.status_code == status, response.text
        assert response.json()["error"] and response.json()["detail"]
    # a cast whose image cannot be fetched: an error event, nothing else
    url = f"http://127.0.0.1:{world.http_port}/v1/frames/{FRAME}/casts/{'0' * 32}.bmp"
    announcement = json.dumps({"v": 1, "id": "gone", "url": url, "seconds": 30})
    publish(world.broker, "renderer", f"titanoframe/{FRAME}/cast", announcement)
    failed = lambda: any(e.get("code") == "cast_failed" for e in casts.on("event"))  # noqa: E731
    assert kit.tick_until(app, failed, 20), casts.on("event")
    assert len(world.device.shown) == draws
    # a good cast last: anything published or shown before it would be seen before it
    assert cast(world, jpeg()).status_code == 200
    assert kit.tick_until(app, lambda: casting(world), 20), world.logs()
    assert len(world.device.shown) == draws + 1
    assert len(casts.on("cast")) == 2  # the good one, and the one published by hand
    # the rate per frame: 6 a minute, and every authorised cast counts (6 so far)
    limited = cast(world, jpeg())
    assert (limited.status_code, limited.json()["error"]) == (429, "rate_limited")
    assert cast(world, jpeg(), token="wrong").status_code == 401  # the token still comes first
    bridge = kit.Publisher(*_bridge(world), FRAME)
    try:
        assert kit.barrier(app, bridge)
    finally:
        bridge.close()
    assert len(casts.on("cast")) == 2 and len(world.device.shown) == draws + 1


def _bridge(world: World) -> tuple[str, int, str, str]:
    return "127.0.0.1", world.broker.port, "bridge", world.broker.users["bridge"]

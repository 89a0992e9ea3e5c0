"""The frame's MQTT link and the watchdog: oversized messages are dropped and reported,
reconnects back off 1, 2, 4, 8, 8… s and never outlast the 16 s watchdog, and the watchdog is
fed through reconnects, page fetches and downloads on a slow network (simulated time: the socket
pool moves the clock by the bytes it moves)."""

from __future__ import annotations

import binascii
import itertools
import json
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import adafruit_minimqtt.adafruit_minimqtt as minimqtt
import pytest

from common import manifest as bridge_manifest
from tests.frame.test_frame_app import FRAME, Rig
from tests.kit import framekit as kit
from tests.kit.broker import USERS, Mosquitto
from titano_app.frame import link as link_mod
from titano_app.frame.app import RETRY_MS, App
from titano_app.frame.topics import Topics
from titano_app.sim.device import SimDevice
from titano_app.sim.pool import FlakyPool

WATCHDOG_MS = 16_000


@pytest.fixture
def rig(broker: Mosquitto, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(broker, tmp_path)
    yield r
    r.close()


def _errors(rig: Rig) -> list[tuple[object, object]]:
    return [(e["code"], e["detail"]) for e in rig.events() if e["event"] == "error"]


def _oversized_page(n: int) -> tuple[bytes, bytes]:
    """A page of `n` pictures (over 8192 bytes for n > 178) and a summary naming it."""
    rng = random.Random(n)
    ids = sorted(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n))
    page = "".join(f"{pid} 0000000{i % 10}\n" for i, pid in enumerate(ids)).encode()
    digest = "%08x" % (binascii.crc32(page) & 0xFFFFFFFF)
    doc = {"v": 1, "rev": bridge_manifest.rev_of({"all": digest}), "count": n, "width": 0,
           "shards": {"all": digest}, "url": "http://127.0.0.1:9/", "format": "bmp8",
           "generated": 1}  # fmt: skip
    return page, json.dumps(doc, separators=(",", ":")).encode()


def test_oversized_messages_are_dropped_reported_and_change_nothing(rig: Rig) -> None:
    ids = {rig.add(n) for n in range(2)}
    rig.publish()
    app = rig.start()
    assert rig.synced()
    rev, settings, shown = app.live["rev"], dict(app.settings), app.show.picture
    topic = f"titanoframe/{FRAME}/"

    rig.pub._send(
        topic + "manifest", b"{" + b" " * 12_000 + b"}"
    )  # 12 KB: over the frame's limit, under the broker's
    rig.pub.command("brightness", "5" * 9000)
    rig.barrier()
    assert _errors(rig) == [
        ("bad_manifest", "summary is 12002 bytes (limit 8192)"),
        ("bad_command", "brightness: payload is 9000 bytes (limit 8192)"),
    ]
    assert app.link.dropped == 2
    assert (app.live["rev"], app.settings, app.show.picture) == (rev, settings, shown)
    assert kit.card_pictures(rig.card) == ids

    page, summary = _oversized_page(200)  # a page no bridge would publish: 9,200 bytes
    rig.pub._send(topic + "manifest/all", page)
    rig.pub._send(topic + "manifest", summary)
    assert kit.tick_until(app, lambda: app.live["rev"] != rev and app.steps is None)
    rig.settle()
    assert _errors(rig)[-1] == ("bad_manifest", f"page all is {len(page)} bytes (limit 8192)")
    assert kit.card_pictures(rig.card) == ids  # nothing deleted for a page it could not read
    assert app.show.picture == shown and app.live["sync"] == "error"


def test_a_page_the_broker_never_sends_is_reported_as_missing_and_retried_later(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(link_mod, "PAGE_WAIT_MS", 300)  # time only: nothing will come anyway
    ids = {rig.add(n) for n in range(2)}
    rig.publish()
    app = rig.start()
    assert rig.synced()
    rev, fetched = app.live["rev"], len(rig.server.requests)

    rig.add(2)
    m = bridge_manifest.build(rig.pictures, None, rig.server.url, "bmp8", int(time.time()))
    assert list(m.pages) == ["all"]
    rig.pub._send(f"titanoframe/{FRAME}/manifest/all", b"")  # the broker forgets the old page
    rig.pub._send(f"titanoframe/{FRAME}/manifest", m.summary)  # names a page it does not have
    assert kit.tick_until(app, lambda: app.live["rev"] != rev and app.steps is None)
    rig.settle()
    assert _errors(rig)[-1] == ("bad_manifest", "page all did not arrive in time")
    assert kit.card_pictures(rig.card) == ids and len(rig.server.requests) == fetched
    assert app.live["sync"] == "error"

    rig.pub._send(f"titanoframe/{FRAME}/manifest/all", m.pages["all"])
    rig.settle(0.5)
    assert kit.card_pictures(rig.card) == ids  # the round waits for its retry time
    rig.clock.advance(RETRY_MS)
    assert rig.synced()
    assert app.live.get("sync") == "idle" and len(rig.server.requests) == fetched + 1


class SleepSpy:
    """The `time` module, except that sleep() records instead of sleeping."""

    def __init__(self, slept: list[float]) -> None:
        self.sleep = slept.append

    def __getattr__(self, name: str) -> object:
        return getattr(time, name)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def test_reconnect_backs_off_up_to_8_s_and_the_library_never_sleeps(
    broker: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(minimqtt, "time", SleepSpy(slept))  # MiniMQTT's own back-off sleeps
    clock, pool, feeds = FakeClock(), FlakyPool(), []
    link = link_mod.Link(
        Topics(FRAME), broker.host, broker.port, USERS[FRAME], pool, None,
        lambda: feeds.append(clock.now),
    )  # fmt: skip
    broker.stop()
    tries: list[int] = []
    while clock.now <= 40_000:
        opened = pool.sockets_opened
        link.poll(clock.now)
        if pool.sockets_opened > opened:
            tries.append(clock.now)
        clock.now += 100
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert gaps == [1000, 2000, 4000, 8000, 8000, 8000, 8000]
    assert max(gaps) <= link_mod.MAX_BACKOFF_MS < WATCHDOG_MS
    assert feeds and feeds == sorted(feeds)  # fed before each try
    broker.start()
    clock.now = tries[-1] + 8000
    assert link.poll(clock.now) and link.connects == 1
    broker.stop()  # after a success the back-off starts again at 1 s
    while link.poll(clock.now):
        clock.now += 100
    failed_at = clock.now
    retried: list[int] = []
    while not retried:
        clock.now += 100
        opened = pool.sockets_opened
        link.poll(clock.now)
        if pool.sockets_opened > opened:
            retried.append(clock.now)
    assert retried[0] - failed_at == 1000
    assert slept == []


class SlowJoin(SimDevice):
    """A board whose failed Wi-Fi join blocks for the 8 s hw.Board allows it."""

    def __init__(self, settings: dict[str, str], card: Path, png: Path, clock: kit.Clock) -> None:
        super().__init__(settings, card, png, clock=clock)
        self.kit_clock = clock

    def connect_wifi(self) -> bool:
        up = super().connect_wifi()
        if not up:
            self.kit_clock.advance(8000)
        return up


def test_watchdog_is_fed_while_the_network_is_gone(broker: Mosquitto, tmp_path: Path) -> None:
    clock = kit.Clock()
    settings = kit.frame_settings(FRAME, USERS[FRAME], broker.port)
    device = SlowJoin(settings, tmp_path / "card", tmp_path / "screen.png", clock=clock)
    device.flaky.down = True
    app = App(device, clock)
    start = clock()
    while clock() - start < 120_000:  # two minutes of simulated outage
        app.tick(clock())
        clock.advance(250)
    assert device.wifi_tries >= 10
    assert device.max_feed_gap < WATCHDOG_MS
    device.flaky.down = False
    assert kit.tick_until(app, lambda: app.link.connected)


def test_watchdog_is_fed_through_page_fetches_and_downloads_on_a_slow_network(rig: Rig) -> None:
    """At 8 KB/s a 150 KB picture takes 19 s, longer than the watchdog allows."""
    for n in range(3):
        rig.add(n)
    rig.publish()
    app = rig.start()
    moved = [0]

    def slow(nbytes: int) -> None:
        moved[0] += nbytes
        rig.clock.advance(nbytes * 1000 // 8192)

    rig.device.flaky.on_transfer = slow
    assert rig.synced()
    assert app.fetcher.requests == 3 and moved[0] > 3 * 150_000
    assert moved[0] * 1000 // 8192 > 3 * WATCHDOG_MS  # the sync took far longer than 16 s
    assert rig.device.max_feed_gap <= 1000  # fed every 4 KB chunk: every half second

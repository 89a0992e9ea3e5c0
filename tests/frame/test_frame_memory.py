"""The frame's memory does not grow with the library: a 1,000- and a 30,000-picture manifest,
published retained on a real Mosquitto exactly as the bridge publishes it, synced by the
simulated frame, measured with tracemalloc.

The card already holds every listed picture (files in the store's layout), so the first sync
fetches and diffs every page but downloads nothing: 30,000 downloads would take minutes and
measure the HTTP library, not the sync. The one-change sync then downloads its one new picture
from a plain HTTP server in another process (so its allocations are not counted).

What is measured, while the app ticks through each sync (the first from before it connects):
- `peak`: every allocation in the process (the app, MiniMQTT, adafruit_requests, json; nothing
  else runs meanwhile), at its worst moment. It bounds the app's own share at every instant.
- `app_held`: what allocations made in titano_app/frame files hold after a tick, the worst
  tick: the app's own working set between ticks (the summary's digests; the page the app
  keeps is the buffer MiniMQTT read it into, so it counts in `peak`, not here).
Garbage is collected after each tick, as `frame.main.run` does on the board. CPython objects
are larger than the board's, so these numbers are on the safe side.
"""

from __future__ import annotations

import gc
import os
import random
import shutil
import subprocess
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.kit import ROOT
from tests.kit import framekit as kit
from tests.kit.broker import USERS, Mosquitto
from titano_app.frame.app import App
from titano_app.sim.device import SimDevice
from tools.broker import free_port, wait_port

FRAME = "kitchen"
APP_CODE = str(ROOT / "titano_app" / "frame") + "/"
BUDGET = 48 * 1024
SPREAD = 8 * 1024
RUNS = ("first", "change")


class QuietDevice(SimDevice):
    """Records what it would draw without rendering: the screen is not the frame's memory."""

    def show(self, path: str) -> None:
        self.shown.append(path)


def library(n: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    ids = (str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n))
    return {pid: f"{rng.getrandbits(32):08x}" for pid in ids}


def fill_card(card: Path, pictures: dict[str, str], stub: Path) -> None:
    """The store's layout, every file a link to one real picture."""
    for pid, version in pictures.items():
        os.link(stub, kit.card_file(card, pid, version))


@dataclass
class Measure:
    peak: int  # bytes allocated at the worst moment, over the starting point
    app_held: int  # held by the app's own code after a tick, the worst tick
    received: dict[str, int]  # PUBLISH messages the app's client received, by kind


def _kind(topic: str) -> str:
    if topic.endswith("/manifest"):
        return "summary"
    return "page" if "/manifest/" in topic else "other"


def app_share() -> int:
    """Bytes now held by allocations the app's own code made."""
    stats = tracemalloc.take_snapshot().statistics("filename")
    return sum(s.size for s in stats if s.traceback[0].filename.startswith(APP_CODE))


def measure(app: App, done: Callable[[], bool], seconds: float = 45) -> Measure:
    """Tick `app` until `done()`, tracing every allocation."""
    client = app.link._client
    deliver = client.on_message
    received = {"summary": 0, "page": 0, "other": 0}

    def counting(c: object, topic: str, payload: bytes) -> None:
        received[_kind(topic)] += 1
        deliver(c, topic, payload)

    client.on_message = counting
    gc.collect()
    gc.freeze()  # what exists now is not collected again: each tick's collect stays quick
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        peak = app_peak = 0
        end = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < end, "the sync did not finish"
            app.tick(app.clock())
            gc.collect()
            peak = max(peak, tracemalloc.get_traced_memory()[1] - base)
            app_peak = max(app_peak, app_share())
            tracemalloc.reset_peak()  # the snapshot just taken is the test's, not the frame's
    finally:
        tracemalloc.stop()
        gc.unfreeze()
        client.on_message = deliver
    return Measure(peak, app_peak, received)


class Bmps:
    """A plain HTTP server in its own process serving <id>.bmp files from a folder."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(folder), str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_port(port, self.proc, "http.server")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@dataclass
class Run:
    first: Measure  # the full first sync: connect, summary, every page
    change: Measure  # one picture added: its page, the summary, one download
    downloads: tuple[int, int]  # pictures fetched by each sync
    page: int  # bytes of the largest page
    leaf: int  # bytes the store allocates to list the fullest card leaf


def leaf_cost(app: App, card: Path) -> int:
    """What listing the fullest card leaf costs (the store holds one listing at a time)."""
    sizes = {leaf: len(os.listdir(leaf)) for leaf in (card / "p").glob("*/*") if leaf.is_dir()}
    fullest = max(sizes, key=lambda leaf: sizes[leaf])
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        names = app.store._names(fullest.parent.name, fullest.name)
        cost = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert len(names) == sizes[fullest]
    return cost


def publish(
    broker: Mosquitto, pictures: dict[str, str], url: str, before: kit.Publisher | None
) -> kit.Publisher:
    """Publish as the bridge does (only the pages that changed since `before`), then leave:
    nothing else runs in this process while the frame is measured."""
    pub = kit.Publisher(broker.host, broker.port, "bridge", USERS["bridge"], FRAME)
    if before is not None:
        pub.pages = before.pages
    pub.manifest(pictures, url)
    pub.close()
    return pub


def sync_library(broker: Mosquitto, tmp: Path, n: int) -> Run:
    pictures = library(n, n)
    stub = tmp / "stub.bmp"
    stub.write_bytes(kit.picture_bytes(1))
    server = Bmps(tmp / "bmps")
    try:
        pub = publish(broker, pictures, server.url, None)
        assert pub.last is not None
        rev, page = pub.last.rev, max(len(p) for p in pub.last.pages.values())
        fill_card(tmp / "card", pictures, stub)
        settings = kit.frame_settings(FRAME, USERS[FRAME], broker.port)
        device = QuietDevice(settings, tmp / "card", tmp / "screen.png")
        app = App(device, kit.Clock())
        first = measure(app, lambda: app.live.get("rev") == rev and app.live["sync"] == "idle")
        assert app.store.count() == n and app.live["pending"] == 0
        fetched = app.fetcher.requests

        new = library(1, n + 1)
        (server.folder / f"{next(iter(new))}.bmp").write_bytes(kit.picture_bytes(2))
        pub = publish(broker, pictures | new, server.url, pub)
        assert pub.last is not None and len(pub.published) == 2  # one page and the summary
        rev = pub.last.rev
        change = measure(app, lambda: app.live.get("rev") == rev and app.live["sync"] == "idle")
        assert kit.card_pictures(tmp / "card") == set(pictures) | set(new)
        downloads = (fetched, app.fetcher.requests - fetched)
        return Run(first, change, downloads, page, leaf_cost(app, tmp / "card"))
    finally:
        server.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Run]:
    if shutil.which("mosquitto") is None:
        pytest.skip("needs the mosquitto binary (apt-get install mosquitto)")
    out = {}
    for n in (1000, 30000):
        tmp = tmp_path_factory.mktemp(f"library{n}")
        broker = Mosquitto(tmp / "broker")
        broker.start()
        try:
            out[n] = sync_library(broker, tmp, n)
        finally:
            broker.stop()
    return out


def test_first_sync_fetches_each_page_once_and_downloads_nothing(runs: dict[int, Run]) -> None:
    for n, pages in ((1000, 16), (30000, 256)):
        assert runs[n].first.received == {"summary": 1, "page": pages, "other": 0}
        assert runs[n].downloads[0] == 0


def test_one_change_receives_one_page_and_the_summary(runs: dict[int, Run]) -> None:
    for n in (1000, 30000):
        assert runs[n].change.received == {"summary": 1, "page": 1, "other": 0}
        assert runs[n].downloads[1] == 1


def test_peak_memory_stays_within_the_budget(runs: dict[int, Run]) -> None:
    peaks = {(n, phase): getattr(r, phase).peak for n, r in runs.items() for phase in RUNS}
    assert max(peaks.values()) <= BUDGET, peaks
    held = {(n, phase): getattr(r, phase).app_held for n, r in runs.items() for phase in RUNS}
    assert max(held.values()) <= BUDGET // 2, held


def test_memory_does_not_grow_with_the_library(runs: dict[int, Run]) -> None:
    """30 times the pictures: each sync's peak (the first, the one-change) moves by less than
    SPREAD. The first sync's own peak grows by no more than the fullest card leaf's listing and
    the largest page grow (the page is capped by the 8 KB page limit, a leaf holds ~1/4096 of
    the library): nothing is held per picture of the library."""
    small, big = runs[1000], runs[30000]
    for phase in RUNS:
        peaks = {n: getattr(r, phase).peak for n, r in runs.items()}
        assert abs(peaks[30000] - peaks[1000]) <= SPREAD, (phase, peaks)
    held = {n: max(r.first.app_held, r.change.app_held) for n, r in runs.items()}
    assert held[30000] - held[1000] <= SPREAD, held
    growth = big.first.peak - small.first.peak
    allowed = (big.leaf - small.leaf) + (big.page - small.page) + 2048
    assert growth <= allowed, (growth, big, small)

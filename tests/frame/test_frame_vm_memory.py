"""The frame's memory on the board's own heap: the bundled app (compiled with CircuitPython's
mpy-cross, as `make bundle --mpy-cross` ships it) in CircuitPython 10.2.1's 32-bit VM at
`-X heapsize=120k` — the ~150 KB the Titano leaves free, less ~30 KB for what the VM does not
model (the ESP32SPI pool, display and touch objects).

A 30,000-picture library (256 pages, published as the bridge publishes it) is synced onto a
card that holds 25 pictures; then a one-change sync (one picture leaves, the next one listed
comes), 20 downloads (20 more leave, 20 come), and a few hundred ticks of slideshow. Not one
MemoryError anywhere, the MQTT session never dropped, and the round ends with one `sd_full`
that counts what did not fit. How low the heap goes is a benchmark (bench/board_memory.py),
not a test: counts are asserted here, never times.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit import framekit as kit
from tests.kit import vmkit
from tests.kit.broker import USERS, Mosquitto
from tests.kit.mqttc import Collector

pytestmark = [pytest.mark.slow, vmkit.needs_vm]
PICTURES = 30_000
CARD = 25
BASE = "titanoframe/kitchen/"


class Watch:
    def __init__(self, broker: Mosquitto) -> None:
        self.c = Collector(broker, "homeassistant")
        assert self.c.wait_connected()
        self.c.subscribe(BASE + "#")

    def of(self, leaf: str) -> list[bytes]:
        with self.c.lock:
            return [p for t, p, _ in self.c.messages if t == BASE + leaf]

    def events(self, kind: str) -> list[dict[str, object]]:
        found = (json.loads(p) for p in self.of("event"))
        return [e for e in found if e["event"] == kind]


@pytest.fixture
def watch(broker: Mosquitto) -> Iterator[Watch]:
    w = Watch(broker)
    yield w
    w.c.close()


@pytest.mark.timeout(900)  # three rounds of 256 pages in an interpreter, on a busy machine
def test_30000_pictures_onto_a_small_card_at_a_120k_heap(
    broker: Mosquitto, tmp_path: Path, watch: Watch
) -> None:
    app = vmkit.bundle(tmp_path / "CIRCUITPY")
    lib = vmkit.Library(broker, PICTURES)
    card = tmp_path / "card"
    board = vmkit.BoardFrame(
        app, card, kit.frame_settings("kitchen", USERS["kitchen"], broker.port)
    )
    board.limit_card(CARD)
    board.start()
    try:

        def synced(n: int) -> bool:
            return len(watch.events("synced")) >= n

        def say() -> str:
            return "\n".join(board.output()[-30:]) + f"\nevents: {watch.of('event')[-10:]}"

        assert vmkit.wait_until(lambda: synced(1), 240, board), say()
        first = {"event": "synced", "added": CARD, "removed": 0, "pages": 256}
        assert watch.events("synced")[0] == first
        full = [e["detail"] for e in watch.events("error") if e["code"] == "sd_full"]
        assert full == [f"{PICTURES - CARD} listed pictures did not fit"], say()
        assert len(lib.server.requests) == CARD

        # one change: a picture on the card leaves the library, the next one listed comes
        held = sorted(kit.card_pictures(card))
        lib.drop(held[:1])
        assert vmkit.wait_until(lambda: synced(2), 120, board), say()
        # no page is complete on a card this small, so each round reads all 256 again
        assert watch.events("synced")[1] == {**first, "added": 1, "removed": 1}
        # 20 downloads
        lib.drop(held[1:21])
        assert vmkit.wait_until(lambda: synced(3), 180, board), say()
        assert watch.events("synced")[2] == {**first, "added": 20, "removed": 20}
        assert len(kit.card_pictures(card)) == CARD and len(lib.server.requests) == CARD + 21

        # a few hundred ticks of slideshow (each tick feeds the watchdog at least once)
        feeds = len(board.marks("feeds"))
        assert vmkit.wait_until(lambda: len(board.marks("feeds")) >= feeds + 1, 60, board)

        errors = [e for e in watch.events("error") if e["code"] != "sd_full"]
        assert errors == [], say()  # no out_of_memory, no internal, no download_failed
        assert board.crashed() == [] and board.alive(), say()
        assert watch.of("status") == [b"online"], say()  # one session, never dropped
        assert all(size == vmkit.PICTURE for _, size in board.shown())
    finally:
        board.stop()
        lib.close()

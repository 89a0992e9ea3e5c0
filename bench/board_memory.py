"""Board memory benchmark: the frame app on CircuitPython 10.2.1's own VM, at the board's heap.

Run from the repository root: ``.venv/bin/python bench/board_memory.py [--sizes
1000,10000,30000] [--write-docs]``. Needs the `mosquitto` binary and `../shared/circuitpython`
(the VM and its mpy-cross). Every run is a first sync of a library published as the bridge
publishes it (tests/kit/vmkit.py: `bridge.manifest`, retained on a real Mosquitto, pictures from a
plain picture server) onto a card that holds 25 pictures, the app bundled as `make bundle`
bundles it, with only the hardware module stood in (tests/kit/board/hw.py). Measured:

- lowest free heap: the least `gc.mem_free()` the app read at the start of a tick (right after
  the main loop's collection), i.e. what it holds at its fullest between ticks;
- round time: from the summary's publication to the `synced` event (wall clock, loopback);
- pages read (the `synced` event) and MQTT sessions (`online` on the status topic: 1 is none
  dropped); MemoryErrors (`out_of_memory` and `internal` events);
- the smallest `-X heapsize` at which the 30,000-picture sync passes (no MemoryError, one
  session, the round ends), by bisection in steps of 5 KB.

Baselines, in the same run: this app bundled as .py (`make bundle` without `--mpy-cross`), and
the app as it was before the board was tested on its own VM (commit BASELINE) with only its
QoS call fixed so that it boots, compiled the same way: the version whose 30,000-picture sync
failed at 150k. `--write-docs` replaces the "## Frame on the board's heap" section of
docs/benchmarks.md and keeps every other section.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from tests.kit import framekit as kit  # noqa: E402
from tests.kit import vmkit  # noqa: E402
from tests.kit.broker import USERS, Mosquitto  # noqa: E402
from tests.kit.mqttc import Collector  # noqa: E402

BASELINE = "14517cb"
CARD = 25
ROUND_LIMIT_S = 240.0
DOCS = ROOT / "docs" / "benchmarks.md"
HEADING = "## Frame on the board's heap"


@dataclass
class Run:
    passed: bool
    seconds: float | None  # summary published -> synced
    lowest_free: int | None
    pages: int | None
    sessions: int
    memory_errors: int
    other_errors: list[str]


def baseline_app(out: Path) -> Path:
    """The bundle with the frame app of BASELINE (its QoS call fixed) in place of today's."""
    vmkit.bundle(out)
    frame = out / "frame"
    with tempfile.TemporaryDirectory() as scratch:
        tar = subprocess.run(
            ["git", "archive", BASELINE, "titano_app/frame"], cwd=ROOT, capture_output=True,
            check=True,
        ).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", scratch], input=tar, check=True)
        old = Path(scratch) / "titano_app" / "frame"
        link = old / "link.py"
        text = link.read_text()
        link.write_text(text.replace("OFFLINE, 1, True)", "OFFLINE, retain=True, qos=1)"))
        for source in old.glob("*.py"):
            if source.stem == "hw":
                continue
            target = frame / (source.stem + ".mpy")
            subprocess.run([str(vmkit.MPY_CROSS), "-o", str(target), str(source)], check=True)
    return out


def sync(app: Path, size: int, heap: str, tmp: Path) -> Run:
    """One first sync of `size` pictures onto a 25-picture card, on a broker of its own."""
    broker = Mosquitto(tmp / "broker")
    broker.start()
    watch = Collector(broker, "homeassistant")
    assert watch.wait_connected()
    watch.subscribe("titanoframe/kitchen/#")
    lib = vmkit.Library(broker, size)
    published = time.monotonic()
    settings = kit.frame_settings("kitchen", USERS["kitchen"], broker.port)
    board = vmkit.BoardFrame(app, tmp / "card", settings, heap)
    board.limit_card(CARD)
    board.start()

    def events() -> list[dict[str, object]]:
        with watch.lock:
            return [json.loads(p) for t, p, _ in watch.messages if t.endswith("/event")]

    try:
        done = vmkit.wait_until(
            lambda: any(e["event"] == "synced" for e in events()), ROUND_LIMIT_S, board
        )
        seconds = time.monotonic() - published if done else None
        with watch.lock:
            sessions = sum(
                1 for t, p, _ in watch.messages if t.endswith("/status") and p == b"online"
            )
        found = events()
        synced = [e for e in found if e["event"] == "synced"]
        codes = [str(e["code"]) for e in found if e["event"] == "error"]
        memory = sum(c in ("out_of_memory", "internal") for c in codes)
        memory += sum("MemoryError" in line for line in board.output())
        other = sorted({c for c in codes if c not in ("out_of_memory", "internal", "sd_full")})
        passed = done and board.alive() and sessions == 1 and memory == 0 and not other
        pages = synced[0].get("pages") if synced else None
        return Run(passed, seconds, board.lowest_free(), pages, sessions, memory, other)  # type: ignore[arg-type]
    finally:
        board.stop()
        lib.close()
        watch.close()
        broker.stop()


def smallest_heap(app: Path, size: int, work: Path, low: int = 60, high: int = 150) -> int | None:
    """The smallest heap in KB (a multiple of 5) at which the sync passes; None if not at high."""
    tries = 0

    def passes(kb: int) -> bool:
        nonlocal tries
        tries += 1
        return sync(app, size, f"{kb}k", work / f"bisect-{tries}").passed

    if not passes(high):
        return None
    while high - low > 5:
        mid = (low + high) // 2 // 5 * 5
        if passes(mid):
            high = mid
        else:
            low = mid
    return high


def boot_free(app: Path, work: Path) -> tuple[int, int]:
    """Free heap and its largest free block once the app has booted on an empty card, before
    any network (150k heap)."""
    settings = {"FRAME_ID": "kitchen", "FRAME_SECRET": "x", "MQTT_HOST": "127.0.0.1",
                "MQTT_PORT": "1"}  # fmt: skip
    board = vmkit.BoardFrame(app, work / "card", settings, "150k")
    board.start()
    try:
        vmkit.wait_until(lambda: len(board.marks("feeds")) >= 2, 30, board)  # booted, ticking
        return board.lowest_free() or 0, board.largest_block_at_boot() or 0
    finally:
        board.stop()


def _kb(n: int | None) -> str:
    return "—" if n is None else f"{n / 1024:.1f} KB"


def _row(what: str, size: int, heap: str, run: Run) -> str:
    seconds = "did not end" if run.seconds is None else f"{run.seconds:.1f} s"
    errors = ", ".join(run.other_errors) or "none"
    return (
        f"| {what} | {size:,} | {heap} | {'yes' if run.passed else 'no'} | "
        f"{_kb(run.lowest_free)} | {seconds} | {run.pages if run.pages is not None else '—'} | "
        f"{run.sessions} | {run.memory_errors} | {errors} |"
    )


def report(sizes: list[int], work: Path) -> str:
    ours = vmkit.bundle(work / "mpy" / "CIRCUITPY")
    as_py = vmkit.bundle(work / "py" / "CIRCUITPY", compiled=False)
    before = baseline_app(work / "baseline" / "CIRCUITPY")
    rows = []
    for size in sizes:
        rows.append(
            _row("titanoframe (.mpy)", size, "120k", sync(ours, size, "120k", work / f"o{size}"))
        )
    big = max(sizes)
    rows.append(_row("titanoframe (.mpy)", big, "150k", sync(ours, big, "150k", work / "o150")))
    rows.append(
        _row("titanoframe bundled as .py", big, "150k", sync(as_py, big, "150k", work / "p150"))
    )
    rows.append(_row(f"baseline: the app at {BASELINE}, QoS call fixed (.mpy)", big, "150k",
                     sync(before, big, "150k", work / "b150")))  # fmt: skip
    least = smallest_heap(ours, big, work / "bisect")
    mpy, py = boot_free(ours, work / "boot-mpy"), boot_free(as_py, work / "boot-py")
    head = (
        f"`bench/board_memory.py` ({time.strftime('%Y-%m-%d')}, CircuitPython 10.2.1 unix VM, "
        "32-bit): a first sync onto a card that holds 25 pictures, the library published as the "
        "bridge publishes it on a real Mosquitto. Lowest free heap: the least `gc.mem_free()` "
        "the app read at the start of a tick (after the main loop's collection). Sessions: "
        "`online` messages on the status topic (1: the MQTT session was never dropped). Round "
        "time is wall clock on loopback, not the board's. The VM does not model ~30 KB the "
        "board also holds (the ESP32SPI pool, display and touch objects): 120k here is the "
        "board's 150k with that margin.\n\n"
        "| app | pictures | heap | passed | lowest free | round | pages read | sessions "
        "| MemoryErrors | other errors |\n|---|---:|---:|---|---:|---:|---:|---:|---:|---|\n"
    )
    tail = (
        f"\nSmallest heap at which the {big:,}-picture sync passes (bisected, 5 KB steps): "
        f"**{'over 150' if least is None else least}k**.\n\n"
        "What `--mpy-cross` saves, once booted (150k, before the network): free heap "
        f"{_kb(mpy[0])} compiled, {_kb(py[0])} as .py; its largest free block {_kb(mpy[1])} "
        f"compiled, {_kb(py[1])} as .py (the board compiles .py files itself, and what that "
        "leaves behind splits the heap: every page, summary and download needs a block).\n"
    )
    return head + "\n".join(rows) + "\n" + tail


def write_docs(section: str) -> None:
    text = DOCS.read_text()
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + HEADING + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        rest = "" if end < 0 else text[end:]
        text = text[:start] + HEADING + "\n\n" + section + rest
    DOCS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,30000")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as work:
        section = report(sizes, Path(work))
    print(section)
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()

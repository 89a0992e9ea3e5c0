"""Bridge benchmark: what one poll costs, against the original frame's sync, in the same run.

Run from the repository root: ``.venv/bin/python bench/bridge.py [--sizes 1000,10000,30000]
[--runs 3] [--write-docs]``; with ``--frames 1,10,50`` it runs the scale grid of
`bench/bridgescale.py` instead (frames × library size, patched manifests against the full
rebuild per change, in the same run) and writes the "Bridge at scale" section.

Needs the `mosquitto` binary. For each library size it seeds the fake Immich
(tests/kit/fakes) with that many favourites, starts a real Mosquitto (tests/kit/broker.py) and
a bridge, and measures per poll, for (a) nothing changed, (b) one
favourite added and (c) one removed:

- Immich requests and response bytes (the client's own counters),
- CPU time of the thread doing the poll (the fake Immich runs in other threads of this
  process and is not counted),
- MQTT payload bytes the bridge published.

The original frame's approach is rebuilt from its description (design notes): every sync walks
all favourites with `isFavorite` at 250 a page and sends the board the whole
`{uuid: md5(checksum)}` JSON map. It is measured with the same client, on the same fake, in the
same process. Medians of `--runs` are printed as Markdown; `--write-docs` replaces the
"## Bridge" section of docs/benchmarks.md and keeps every other section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from bridge.service import Service  # noqa: E402
from common.config import (  # noqa: E402
    BridgeConfig,
    Config,
    FrameConfig,
    ImmichConfig,
    MqttConfig,
    RendererConfig,
    Source,
)
from common.immich import ImmichClient  # noqa: E402

DOCS = ROOT / "docs" / "benchmarks.md"
CASES = ("nothing changed", "one favourite added", "one favourite removed")
POLL = 30.0
HOURLY = "hourly full walk, nothing changed"
STARTUP = "first full walk at start-up"


@dataclass(frozen=True)
class Cost:
    requests: int
    bytes_in: int
    cpu_ms: float
    mqtt_bytes: int


def median_cost(costs: list[Cost]) -> Cost:
    return Cost(
        int(statistics.median(c.requests for c in costs)),
        int(statistics.median(c.bytes_in for c in costs)),
        statistics.median(c.cpu_ms for c in costs),
        int(statistics.median(c.mqtt_bytes for c in costs)),
    )


def original_sync(client: ImmichClient) -> int:
    """One sync of the original frame; returns the bytes it sends the board."""
    filters = {"isFavorite": True, "isMotion": False, "isOffline": False, "type": "IMAGE"}
    found = {
        a["id"]: hashlib.md5(a["checksum"].encode()).hexdigest()
        for a in client.search_assets(filters, size=250)
    }
    return len(json.dumps(found).encode())


def measure(action: Callable[[], int], client: ImmichClient, sent: Callable[[], int]) -> Cost:
    requests, received, before = client.requests_made, client.bytes_received, sent()
    start = time.thread_time()
    extra = action()
    cpu = (time.thread_time() - start) * 1000
    return Cost(
        client.requests_made - requests,
        client.bytes_received - received,
        cpu,
        sent() - before + extra,
    )


def bench_size(size: int, runs: int, workdir: Path) -> dict[str, dict[str, Cost]]:
    # Imported here: the scale grid's bridge process imports this module, and must not carry
    # the fakes in its memory.
    from tests.kit.broker import Mosquitto
    from tests.kit.fakes.immich import FakeImmich

    broker = Mosquitto(workdir / f"broker-{size}")
    broker.start()
    try:
        with FakeImmich() as fake:
            return _bench(fake, broker, size, runs)
    finally:
        broker.stop()


def _bench(fake: Any, broker: Any, size: int, runs: int) -> dict[str, dict[str, Cost]]:
    from tests.kit.broker import USERS

    fake.now = datetime(2025, 11, 20, 12, tzinfo=UTC)
    fake.add_favorites(size)
    spare = fake.add_asset()
    config = Config(
        immich=ImmichConfig(fake.url, fake.api_key),
        mqtt=MqttConfig(host=broker.host, port=broker.port, password=USERS["bridge"]),
        renderer=RendererConfig(public_url="http://192.168.1.10:8080"),
        bridge=BridgeConfig(poll_interval=POLL, metrics_listen=None),
        frames=(FrameConfig(id="kitchen", sources=(Source("favorites", True),)),),
    )
    service = Service(config)
    client = service.immich
    assert client is not None
    now = datetime(2025, 11, 23, 9, tzinfo=UTC)
    service.start(now)
    link = service.link

    def poll() -> int:
        nonlocal now
        now += timedelta(seconds=POLL)
        service.tick(now)
        return 0

    first = measure(poll, client, lambda: link.bytes_published)

    def walk() -> int:
        nonlocal now
        now += timedelta(seconds=config.bridge.full_scan_interval)
        service.tick(now)
        return 0

    hourly = measure(walk, client, lambda: link.bytes_published)
    changes = {CASES[0]: lambda: None, CASES[1]: lambda: fake.favorite(spare),
               CASES[2]: lambda: fake.unfavorite(spare)}  # fmt: skip
    original = ImmichClient(fake.url, fake.api_key)
    ours: dict[str, list[Cost]] = {c: [] for c in CASES}
    theirs: dict[str, list[Cost]] = {c: [] for c in CASES}
    for _ in range(runs):
        for case in CASES:
            fake.advance(1)
            changes[case]()
            ours[case].append(measure(poll, client, lambda: link.bytes_published))
            theirs[case].append(measure(lambda: original_sync(original), original, lambda: 0))
    service.close()
    original.close()
    result = {"titanoframe": {c: median_cost(v) for c, v in ours.items()}}
    result["original"] = {c: median_cost(v) for c, v in theirs.items()}
    result["titanoframe"][STARTUP] = first
    result["titanoframe"][HOURLY] = hourly
    return result


def _ratio(theirs: float, ours: float) -> str:
    if ours == 0:
        return "∞" if theirs else "—"
    return f"{theirs / ours:,.0f}×" if theirs / ours >= 10 else f"{theirs / ours:,.1f}×"


def table(size: int, result: dict[str, dict[str, Cost]]) -> str:
    rows = [
        f"**{size:,} favourites**",
        "",
        "| poll | who | Immich requests | bytes from Immich | CPU ms | bytes published |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for case in (*CASES, HOURLY, STARTUP):
        for who in ("titanoframe", "original"):
            cost = result[who].get(case)
            if cost is not None:
                rows.append(
                    f"| {case} | {who} | {cost.requests} | {cost.bytes_in:,} | "
                    f"{cost.cpu_ms:,.1f} | {cost.mqtt_bytes:,} |"
                )
    rows += ["", "| poll | fewer requests | fewer bytes in | less CPU | fewer bytes out |"]
    rows.append("|---|---:|---:|---:|---:|")
    for case in CASES:
        o, t = result["original"][case], result["titanoframe"][case]
        rows.append(
            f"| {case} | {_ratio(o.requests, t.requests)} | {_ratio(o.bytes_in, t.bytes_in)} | "
            f"{_ratio(o.cpu_ms, t.cpu_ms)} | {_ratio(o.mqtt_bytes, t.mqtt_bytes)} |"
        )
    return "\n".join(rows) + "\n"


INTRO = """## Bridge

`bench/bridge.py` ({when}, Python {py}): the fake Immich seeded with N favourites, a real
Mosquitto, one frame showing favourites. Each row is one poll (median of {runs} runs). CPU is
the polling thread's own CPU time. The original frame walked every favourite at 250 a page on
every sync (`isFavorite` filter) and sent the board the whole `{{uuid: md5(checksum)}}` map; we
make one delta search (`updatedAfter`) and publish only the manifest page that changed plus the
summary. A full walk (the only way to notice permanent deletions) runs once per
`full_scan_interval`, an hour by default, at pages of 1,000, and publishes no manifest when
nothing changed; only the very first one after installing publishes every page. "Bytes
published" counts every message of the bridge: besides the manifests, its state document
(`<base>/bridge/state`, ~307 bytes, retained for Home Assistant) goes out after every poll, as
its `last_poll` moves; the frames do not subscribe to it. The original synced
once an hour. At the defaults an hour of titanoframe is 119 delta polls and one walk: about the
Immich bytes of the original's one hourly sync, while a change reaches the frames within 30 s
instead of within the hour, and the frames receive one page instead of the whole map. A change
patches the one page it is on (see "Bridge at scale" for many frames and the full rebuild each
change cost before).

"""


def write_docs(text: str, heading: str = "## Bridge") -> None:
    old = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = "".join(lines[end:])
        new = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    DOCS.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,10000,30000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument(
        "--frames", help="e.g. 1,10,50: the scale grid (frames × sizes), patched vs full rebuild"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.frames:
        scale(sizes, [int(f) for f in args.frames.split(",")], args.runs, args.write_docs)
        return
    intro = INTRO.format(when=time.strftime("%Y-%m-%d"), py=sys.version.split()[0], runs=args.runs)
    parts = [intro]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            part = table(size, bench_size(size, args.runs, Path(tmp)))
            print(part)
            parts.append(part + "\n")
    if args.write_docs:
        write_docs("".join(parts).rstrip("\n") + "\n")
        print(f"wrote the Bridge section of {DOCS.relative_to(ROOT)}")


def scale(sizes: list[int], frames: list[int], runs: int, write: bool) -> None:
    import bridgescale

    text = bridgescale.intro(runs, ",".join(map(str, frames)))
    with tempfile.TemporaryDirectory() as tmp:
        text += bridgescale.grid(sizes, frames, runs, Path(tmp))
    print(text)
    if write:
        write_docs(text.rstrip("\n") + "\n", "## Bridge at scale")
        print(f"wrote the Bridge at scale section of {DOCS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Bridge at scale: what a poll costs as the library and the number of frames grow, with
patched manifests and with the full rebuild per change they replaced, in the same run.

Driven by ``bench/bridge.py --frames 1,10,50 --sizes 1000,10000,30000``. The bridge runs in a
child process of its own (started with `spawn`, so it imports only the bridge), against the
fake Immich and a real Mosquitto in this process; CPU is the child's `time.process_time`
(every thread of the bridge, the MQTT network thread included, and nothing of the fake Immich
or the broker), RSS is the child's resident set read from /proc after the run. Each frame shows
every favourite (the worst case: every frame contains every change); every other frame pairs
portraits.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common.config import (
    BridgeConfig,
    Config,
    FrameConfig,
    ImageProfile,
    ImmichConfig,
    MqttConfig,
    RendererConfig,
    Source,
)

PATCHED = "patched manifests (this release)"
FULL = "full rebuild per change (before incremental manifests)"
POLL = 30.0
ALBUM = 1000
START = datetime(2025, 11, 23, 9, tzinfo=UTC)


@dataclass(frozen=True)
class Sample:
    """One tick of the bridge, as the child measured it."""

    cpu_ms: float
    mqtt_bytes: int
    messages: int
    rebuilt: int  # frames rebuilt whole
    patched: int  # frames patched
    pages: int  # manifest pages written (by rebuilds and patches)
    rss_mib: float
    peak_mib: float  # ru_maxrss: kept across exec, so it includes the parent's before spawn


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(conn: Connection, config: Config, incremental: bool) -> None:
    """The bridge process: ticks when told, and says what each tick cost."""
    import logging

    from bridge.service import Service

    logging.basicConfig(level=logging.ERROR)
    service = Service(config)
    for state in service.manifests.states.values():
        state.incremental = incremental
    states = list(service.manifests.states.values())
    link = service.link
    while True:
        command, now = conn.recv()
        if command == "stop":
            service.close()
            conn.send(None)
            return
        work = [sum(getattr(s, k) for s in states) for k in ("rebuilds", "patches", "pages_built")]
        sent = (link.bytes_published, link.messages_published)
        cpu = time.process_time()
        if command == "start":
            service.start(now)
        service.tick(now)
        cpu = time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        done = [sum(getattr(s, k) for s in states) for k in ("rebuilds", "patches", "pages_built")]
        rebuilt, patched, pages = (d - w for d, w in zip(done, work, strict=True))
        sent_now = (link.bytes_published - sent[0], link.messages_published - sent[1])
        conn.send(Sample(cpu * 1000, *sent_now, rebuilt, patched, pages, _rss_mib(), peak))


def config(fake: Any, broker: Any, frames: int, layout: str = "all") -> Config:
    from tests.kit.broker import USERS

    return Config(
        immich=ImmichConfig(fake.url, fake.api_key),
        mqtt=MqttConfig(host=broker.host, port=broker.port, password=USERS["bridge"]),
        renderer=RendererConfig(public_url="http://192.168.1.10:8080"),
        bridge=BridgeConfig(poll_interval=POLL, metrics_listen=None),
        frames=tuple(frame(i, layout) for i in range(frames)),
    )


# Frame layouts: every frame shows every favourite (a change touches them all), or one frame
# shows the favourites and each other frame an album of its own (a change touches one).
LAYOUTS = {
    "all": "every frame shows every favourite",
    "albums": f"frame 0 shows the favourites, every other frame an album of {ALBUM:,} of them",
}


def frame(i: int, layout: str = "all") -> FrameConfig:
    profile = ImageProfile(pair_portraits=i % 2 == 1)
    source = Source("favorites", True) if layout == "all" or i == 0 else Source("album", f"A{i}")
    return FrameConfig(f"frame{i}", sources=(source,), image=profile)


def albums(fake: Any, ids: list[str], count: int) -> None:
    """Albums A1…A<count-1> of ALBUM favourites each, spread over the library."""
    for i in range(1, count):
        start = (i * 617) % len(ids)
        fake.add_album(f"A{i}", (ids + ids)[start : start + min(ALBUM, len(ids))])


CASES = ("idle poll", "one favourite added", "one favourite removed")
WALK = "hourly full walk, nothing changed"
STARTUP = "start-up (first full walk)"
RESTART = "restarted"


def run_one(
    fake: Any,
    workdir: Path,
    frames: int,
    incremental: bool,
    runs: int,
    spare: str,
    layout: str = "all",
) -> dict[str, Any]:
    """One bridge process through start-up, idle polls, changes and a full walk; `spare` is
    the photo favourited and unfavourited (the same one for both paths)."""
    from tests.kit.broker import Mosquitto

    broker = Mosquitto(workdir / f"broker-{frames}-{incremental}-{time.monotonic_ns()}")
    broker.start()
    setup = config(fake, broker, frames, layout)
    try:
        with Child(setup, incremental) as bridge:
            samples: dict[str, list[Sample]] = {c: [] for c in CASES}
            result: dict[str, Any] = {STARTUP: [bridge.tick("start")]}
            changes = {CASES[0]: lambda: None, CASES[1]: lambda: fake.favorite(spare),
                       CASES[2]: lambda: fake.unfavorite(spare)}  # fmt: skip
            bridge.tick()  # settle whatever start-up left to do
            for _ in range(runs):
                for case in CASES:
                    fake.advance(1)
                    changes[case]()
                    samples[case].append(bridge.tick())
            result[WALK] = [bridge.tick(step=3600.0)]
            result |= samples
            result["rss"] = bridge.tick()
        # Restarted against the same broker: the manifests it retains are read back first.
        with Child(setup, incremental, bridge.now) as again:
            again.tick("start")
            result[RESTART] = again.tick()
        return result
    finally:
        broker.stop()


class Child:
    """A bridge in a process of its own, ticked on a clock of the benchmark's."""

    def __init__(self, setup: Config, incremental: bool, now: datetime = START) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._ours, theirs = ctx.Pipe()
        self._proc = ctx.Process(target=child, args=(theirs, setup, incremental))
        self.now = now

    def __enter__(self) -> Child:
        self._proc.start()
        return self

    def tick(self, command: str = "tick", step: float = POLL) -> Sample:
        self.now += timedelta(seconds=step)
        self._ours.send((command, self.now))
        sample: Sample = self._ours.recv()
        return sample

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._ours.send(("stop", self.now))
                self._ours.recv()
        finally:
            self._proc.join(30)
            if self._proc.is_alive():
                self._proc.kill()


def median(samples: list[Sample]) -> Sample:
    def mid(field: str) -> Any:
        return statistics.median(getattr(s, field) for s in samples)

    return Sample(*(mid(f) for f in Sample.__dataclass_fields__))


def grid(sizes: list[int], frames: list[int], runs: int, workdir: Path) -> str:
    """Every (layout, library size, frames) with both paths; the Markdown tables."""
    from tests.kit.fakes.immich import FakeImmich

    parts = []
    for layout in LAYOUTS:
        for size in sizes:
            with FakeImmich() as fake:
                fake.now = datetime(2025, 11, 20, 12, tzinfo=UTC)
                ids = fake.add_favorites(size // 2)
                ids += fake.add_favorites(size - size // 2, width=3024, height=4032)  # portraits
                albums(fake, ids, max(frames))
                spare = fake.add_asset()
                rows = []
                for count in frames:
                    for incremental in (True, False):
                        result = run_one(fake, workdir, count, incremental, runs, spare, layout)
                        rows.append(_row(count, incremental, result))
                        print(layout, rows[-1], flush=True)
            parts.append(_table(size, layout, rows))
    return "\n".join(parts)


HEAD = (
    "| frames | manifests | idle poll | one added | one removed | full walk | start-up "
    "| RSS MiB | RSS MiB, restarted | bytes out per change "
    "| frames rebuilt whole / pages written, one added |\n"
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
)


def _row(frames: int, incremental: bool, result: dict[str, Any]) -> str:
    idle, added, removed = (median(result[c]) for c in CASES)
    walk, start, last = result[WALK][0], result[STARTUP][0], result["rss"]
    restart = result[RESTART]
    change = (added.mqtt_bytes + removed.mqtt_bytes) // 2
    work = f"{added.rebuilt:g} / {added.pages:g}"
    return (
        f"| {frames} | {PATCHED if incremental else FULL} | {idle.cpu_ms:,.1f} | "
        f"{added.cpu_ms:,.1f} | {removed.cpu_ms:,.1f} | {walk.cpu_ms:,.0f} | "
        f"{start.cpu_ms:,.0f} | {last.rss_mib:,.0f} | {restart.rss_mib:,.0f} | "
        f"{change:,} | {work} |"
    )


def _table(size: int, layout: str, rows: list[str]) -> str:
    title = f"**{size:,} favourites, {LAYOUTS[layout]}** (bridge CPU ms per poll, median)\n\n"
    return title + HEAD + "\n".join(rows) + "\n"


INTRO = """## Bridge at scale

`bench/bridge.py --frames {frames}` ({when}, Python {py}, {machine}; load average before the
run {load}): the fake Immich seeded with N favourites (half of them portraits), a real
Mosquitto, and a bridge in a process of its own. Two layouts: every frame shows every favourite
(every other frame pairs portraits), so a change touches every frame; and frame 0 shows the
favourites while every other frame shows an album of its own, so a change touches one. The
change is one photo favourited, then unfavourited. CPU is the bridge
process's own CPU time (`time.process_time`: all its threads, none of the fake Immich's or the
broker's), median of {runs} polls; the full walk and start-up are one each. RSS is the bridge
process's resident set at the end of the run; "restarted" is a second bridge process's, one
poll after it started against the same broker, which then holds every frame's manifest (read
back at start-up, as after an upgrade or a reboot). Each configuration runs twice in the same run:
with **{patched}** and with the **{full}**, the path every change took before: select,
version, pair, page and digest every frame's whole library.

"""


def intro(runs: int, frames: str = "1,10,50") -> str:
    import platform
    import sys

    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    machine = f"{cpu}, {os.cpu_count()} cores, {platform.system()}"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return INTRO.format(when=time.strftime("%Y-%m-%d"), py=sys.version.split()[0],
                        machine=machine, load=load, runs=runs, patched=PATCHED,
                        full=FULL, frames=frames)  # fmt: skip

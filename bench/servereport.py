"""The report of bench/serve.py: its measurements as the Markdown section of docs/benchmarks.md,
and writing that section into the page. Pure but for `write_section`.
"""

from __future__ import annotations

import argparse
import os
import re
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Renderer service"
RENDERER = "titanoframe renderer"
STATIC = "aiohttp static file server"


OK = {True: "met", False: "**not met**"}


def hit_rows(hits: dict[str, Any]) -> list[str]:
    servers = hits["servers"]
    ours = servers[RENDERER]
    nginx_row = next((v for k, v in servers.items() if k.startswith("nginx")), None)
    rows = [
        "| server | req/s | server CPU µs per hit | load client CPU µs per hit |",
        "|---|---:|---:|---:|",
    ]
    for name, r in servers.items():
        rows.append(f"| {name} | {r['rate']:,.0f} | {r['cpu_us']:.0f} | {r['client_us']:.0f} |")
    if hits["nginx_skipped"]:
        rows.append(f"| nginx | skipped: {hits['nginx_skipped']} | | |")
    static = ours["rate"] / servers[STATIC]["rate"]
    fetches = hits["immich_fetches"]
    lines = [
        "",
        "| measurement | result | target | |",
        "|---|---:|---:|---|",
        f"| renderer / aiohttp static, req/s | {static:.0%} | ≥ 50% | {OK[static >= 0.5]} |",
    ]
    if nginx_row is not None:
        share = ours["rate"] / nginx_row["rate"]
        cost = ours["cpu_us"] / nginx_row["cpu_us"]
        lines += [
            f"| renderer / nginx, req/s | {share:.0%} | | |",
            f"| renderer's server CPU per hit ÷ nginx's | {cost:.1f}× | | |",
        ]
    for name, r in servers.items():
        if name.startswith(f"{RENDERER} at "):
            gain, cpu = ours["rate"] / r["rate"], ours["cpu_us"] / r["cpu_us"]
            at = name.removeprefix(RENDERER + " ")
            lines += [
                f"| renderer now ÷ renderer {at}, req/s | {gain:.2f}× | | |",
                f"| renderer now ÷ renderer {at}, server CPU per hit | {cpu:.2f}× | | |",
            ]
    lines.append(
        f"| Immich fetches during the cache-hit rounds | {fetches} | 0 | {OK[fetches == 0]} |"
    )
    return rows + lines


# Other processes keeping this much of the machine busy leave a second worker too little to run
# on for the 1 → 2 worker ratio to say anything about the renderer.
BUSY_LIMIT = 0.5


def scaling_verdict(scale: float, others: float) -> str:
    if others >= BUSY_LIMIT:
        return f"not measurable: other processes kept {others:.1f} cores busy"
    return OK[scale >= 1.6]


def scaling_rows(scaling: dict[str, dict[str, float]]) -> list[str]:
    rows = ["| measurement | result | target | |", "|---|---:|---:|---|"]
    for fmt, r in scaling.items():
        scale = r["paired"]
        w, rest = r["workers_ms"], r["serving_ms"] + r["immich_ms"] + r["client_ms"]
        ceiling = 2 * w / (w + rest)
        rows += [
            f"| {fmt} renders, `workers: 1`, best (median) | {r['1']:.1f} ({r['1_median']:.1f}) "
            "pictures/s | | |",
            f"| {fmt} renders, `workers: 2`, best (median) | {r['2']:.1f} ({r['2_median']:.1f}) "
            "pictures/s | | |",
            f"| {fmt} scaling 1 → 2 workers, median of the rounds' ratios (lowest – highest) "
            f"| {scale:.2f}× ({r['paired_min']:.2f}× – {r['paired_max']:.2f}×) | ≥ 1.6× "
            f"| {scaling_verdict(scale, max(r['others_1'], r['others_2']))} |",
            f"| {fmt} CPU ms per picture: workers / serving process / Immich stand-in / "
            f"load client | {w:.1f} / {r['serving_ms']:.2f} / {r['immich_ms']:.2f} / "
            f"{r['client_ms']:.2f} | | |",
            f"| {fmt} two-core ceiling, 2·W ÷ (W + the rest) | {ceiling:.2f}× | | |",
            f"| {fmt} cores busy with other processes, `workers: 1` / `workers: 2` (medians) "
            f"| {r['others_1']:.2f} / {r['others_2']:.2f} | | |",
            f"| {fmt} load average (1 min), before → after its rounds "
            f"| {r['load_before']:.2f} → {r['load_after']:.2f} | | |",
        ]
    return rows


def markdown(
    hits: dict[str, Any], scaling: dict[str, dict[str, float]], args: argparse.Namespace
) -> str:
    before = f" --before {args.before}" if args.before else ""
    hits_table = "\n".join(hit_rows(hits))
    scaling_table = "\n".join(scaling_rows(scaling)) if scaling else "(not run: `--hits-only`)"
    lo, hi = hits["load"]
    return f"""{SECTION}

What it measures: the HTTP service as users run it (`python -m renderer --config`, a real
Mosquitto, photo-like 1920×1440 JPEGs as Immich previews, all on loopback).

Command: `.venv/bin/python bench/serve.py --rounds {args.rounds}{before}`. Measured {date.today()}
on {os.cpu_count()} CPU cores shared with other jobs: absolute numbers move between runs, the
ratios less so, and the machine's load is shown beside each measurement.

**Cache hits.** {args.clients} keep-alive clients fetch one cached bmp16 picture
({hits["size"]:,} bytes) {args.requests:,} times per round, every server in turn, {args.rounds}
rounds, medians: the renderer with the frame's secret (auth, manifest lookup, metrics, access
log{", and the renderer as it was at `" + args.before + "` for before/after" if before else ""});
an aiohttp static file server (`add_static`, `sendfile` straight from the renderer's cache
directory, no auth, no lookups) — the strongest plain-Python baseline, as `python -m http.server`
answers HTTP/1.0 without keep-alive and copies every byte through userspace; and nginx from the
Debian package (one worker process, `sendfile`, keep-alive, no access log, run unprivileged with
its own temporary config on a loopback port; the row says so when it is not installed). Server
CPU is the whole process tree's (the renderer's render workers idle here); the load client (a
thread per connection, blocking sockets) shares the same cores. Load average (1 min) before →
after: {lo:.2f} → {hi:.2f}.

{hits_table}

**Render scaling.** An empty cache, a manifest of {args.pictures} new pictures (`blur` fit),
4 keep-alive clients fetching all of them; pictures per second from the manifest's publication
to the last byte, with `workers: 1` and `workers: 2` in the same run, alternating; best and
median of {args.rounds} rounds each. Immich is a stand-in for its preview endpoint that answers
pre-encoded 1920×1440 JPEGs from memory over a raw socket; it and the load client run on the
same two cores as the renderer, and their CPU is measured and shown too, as are the cores other
processes on the machine kept busy during the rounds (from /proc/stat) and the load average.

{scaling_table}

Reading the scaling rows: each cache miss runs whole in a worker process — fetching the
preview from Immich with the worker's own HTTP session, decoding, rendering, encoding and
writing the cache file — and the serving process only dispatches the job over a pipe, indexes
the file and sends it. CPU per picture is measured per process in the `workers: 2` rounds
(medians). With two cores, two workers can at best reach 2·W ÷ (W + the rest) of one worker's
rate, where W is the workers' CPU per picture and the rest is everything else on the machine
that each picture costs (serving process, Immich stand-in, load client); that is the ceiling
row. Whatever other processes keep busy comes off that ceiling: with two cores, one core's
worth of other work leaves a second worker nothing to run on. The scaling row pairs each round's
two runs, which ran back to back under much the same load; a ratio above the ceiling means the
one-worker run was slowed by other work more than the two-worker run — noise, not scaling. The
target holds only where the row says met, on the load shown beside it. `--profile DIR` writes
the serving process's cProfile stats for a closer look.
"""


def write_section(text: str, path: Path = ROOT / "docs" / "benchmarks.md") -> None:
    """Replace this benchmark's section of the file (or append it), keeping every other one."""
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new.rstrip("\n") + "\n")

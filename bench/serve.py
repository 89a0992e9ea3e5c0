"""Renderer service benchmark: cache hits against aiohttp's static server and nginx, and render
scaling from one worker process to two with the machine's load beside it.

Run from the repository root: ``.venv/bin/python bench/serve.py [--rounds N] [--before REF]
[--hits-only] [--no-write]``. Starts a real Mosquitto and the renderer as users run it
(``python -m renderer --config``), all on loopback, with photo-like 1920×1440 JPEGs as Immich
previews.

1. Cache hits (previews from the fake Immich, which counts its requests): 16 keep-alive clients
   fetch one cached picture N times in total from each server in turn — the renderer with the
   frame's secret; with ``--before REF`` the renderer as it was at that git revision too (its
   ``renderer`` and ``common`` packages extracted with ``git archive``), for a before/after in
   one run; an aiohttp static file server (``add_static``: ``sendfile`` from disk, no auth, no
   lookups), the stronger plain-Python baseline; and nginx (bench/nginx.py), skipped with the
   reason in the table when it is not installed. Medians of req/s and of CPU per hit.
2. Render scaling (previews from a raw-socket stand-in for Immich's preview endpoint that
   answers pre-encoded bytes, so that Immich's side costs as little of the shared CPU as
   possible): an empty cache, a manifest of M new pictures, and 4 clients fetching them all;
   pictures per second from the manifest's publication to the last byte with ``workers: 1``
   and ``workers: 2``, alternating in the same run, best and median of the rounds; the CPU time
   each process spent per picture (renderer's serving process, its workers, the stand-in, the
   load client); the cores other processes kept busy meanwhile; the load average before and
   after. ``--profile DIR`` adds one more ``workers: 2`` round per format with the serving
   process under cProfile (not counted in the results) and leaves the stats in DIR.

Prints a Markdown section and, unless ``--no-write``, puts it into docs/benchmarks.md under
"## Renderer service", leaving the rest of the file as it is.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

import paho.mqtt.client as mqtt  # noqa: E402
import requests  # noqa: E402
import yaml  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from PIL import Image, ImageDraw, ImageFilter  # noqa: E402

from common import manifest  # noqa: E402
from tests.kit.broker import USERS, Mosquitto, free_port  # noqa: E402
from tests.kit.fakes.immich import FakeImmich  # noqa: E402

sys.path[:0] = [str(ROOT / "bench")]
import nginx  # noqa: E402
from loadclient import cpu_seconds, load, machine_busy, process_tree  # noqa: E402
from servereport import RENDERER, STATIC, markdown, write_section  # noqa: E402

BASE = "titanoframe"
# Immich's preview endpoint and nothing else, answering pre-encoded replies from memory with a
# thread per keep-alive connection: the scaling run measures the renderer, so the stand-in for
# Immich should take as little of the shared CPU as possible (a raw socket costs far less per
# reply than any HTTP framework).
PREVIEW_SERVER = r"""
import pathlib, re, socket, sys, threading
def reply(status, ctype, body):
    head = f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body
replies = {p.stem.encode(): reply("200 OK", "image/jpeg", p.read_bytes())
           for p in pathlib.Path(sys.argv[1]).glob("*.jpg")}
missing = reply("400 Bad Request", "application/json",
                b'{"message": "Not found or no asset.view access"}')
pong = reply("200 OK", "application/json", b'{"res": "pong"}')
route = re.compile(rb"GET /api/(?:assets/([0-9a-f-]+)/thumbnail|server/ping)[ ?]")
def serve(conn):
    buf = b""
    with conn:
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            m = route.match(head)
            asset = m and m.group(1)
            conn.sendall(replies.get(asset, missing) if asset else pong if m else missing)
listener = socket.create_server(("127.0.0.1", int(sys.argv[2])), backlog=64)
while True:
    conn, _ = listener.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"""
STATIC_SERVER = """
import sys
from aiohttp import web
app = web.Application()
app.router.add_static("/", sys.argv[1])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)
"""


def photo_preview(seed: int, size: tuple[int, int] = (1920, 1440)) -> bytes:
    """A preview-sized JPEG with gradients, shapes and grain, so it decodes like a photo."""
    w, h = size
    img = Image.linear_gradient("L").resize(size).convert("RGB")
    pen = ImageDraw.Draw(img)
    for i in range(12):
        x, y = (seed * 7919 + i * 104729) % w, (seed * 15485863 + i * 32452843) % h
        r = 60 + (i * 37 + seed) % 300
        pen.ellipse((x - r, y - r, x + r, y + r), fill=((i * 40) % 256, (seed * 13) % 256, 120))
    img = img.filter(ImageFilter.GaussianBlur(3))
    noise = Image.effect_noise(size, 24).convert("RGB")
    img = Image.blend(img, noise, 0.15)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


class Renderer:
    """`python -m renderer --config` in a subprocess."""

    def __init__(
        self,
        tmp: Path,
        broker: Mosquitto,
        immich: tuple[str, str],
        workers: int,
        fmt: str,
        profile: Path | None = None,
        root: Path = ROOT,
    ) -> None:
        self.port = free_port()
        self.cache = tmp / f"cache-{self.port}"
        doc = {
            "immich": {"url": immich[0], "api_key": immich[1]},
            "mqtt": {"host": broker.host, "port": broker.port, "base_topic": BASE},
            "renderer": {
                "listen": f"127.0.0.1:{self.port}",
                "cache_dir": str(self.cache),
                "mqtt_password": USERS["renderer"],
                "workers": workers,
            },
            "frames": {
                "kitchen": {
                    "secret": USERS["kitchen"],
                    "sources": [{"favorites": True}],
                    "image": {"format": fmt, "fit": "blur"},
                }
            },
        }
        config = tmp / f"renderer-{self.port}.yaml"
        config.write_text(yaml.safe_dump(doc))
        env = {**os.environ, "TITANOFRAME_LOG_LEVEL": "WARNING"}
        cmd = [sys.executable, "-m", "renderer", "--config", str(config)]
        if profile is not None:  # the serving process under cProfile; the workers are not
            cmd[1:1] = ["-m", "cProfile", "-o", str(profile)]
        self.proc = subprocess.Popen(cmd, cwd=root, env=env)
        _wait(lambda: _health(self.port).get("broker") == "connected", "renderer start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _health(port: int) -> dict[str, Any]:
    try:
        body = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).json()
        return body if isinstance(body, dict) else {}
    except (requests.RequestException, ValueError):
        return {}


def _wait(predicate: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: timed out waiting for {what}")
        time.sleep(0.05)


def publish_manifest(
    broker: Mosquitto, port: int, pictures: dict[str, str], fmt: str = "bmp16"
) -> None:
    """Retained pages then summary, as the bridge publishes them."""
    url = f"http://127.0.0.1:{port}/v1/frames/kitchen/pictures/"
    built = manifest.build(pictures, None, url, fmt, int(time.time()))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.monotonic_ns()}")
    client.username_pw_set("bridge", USERS["bridge"])
    client.connect(broker.host, broker.port)
    client.loop_start()
    old = manifest.Retained(None, {})
    for topic, payload in manifest.diff(old, built).messages(BASE, "kitchen"):
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def clear_manifest(broker: Mosquitto) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.monotonic_ns()}")
    client.username_pw_set("bridge", USERS["bridge"])
    client.connect(broker.host, broker.port)
    client.loop_start()
    for shard in ("all", *(f"{i:x}" for i in range(16))):
        client.publish(
            f"{BASE}/kitchen/manifest/{shard}", b"", qos=1, retain=True
        ).wait_for_publish(5)
    client.publish(f"{BASE}/kitchen/manifest", b"", qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


@contextmanager
def server(script: str, root: Path, probe: str = "/") -> Iterator[tuple[int, int]]:
    """A small server script in its own process, serving from `root`: (port, pid)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", script, str(root), str(port)])
    try:
        _wait(lambda: _answers(f"http://127.0.0.1:{port}{probe}"), "server start")
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(30)


def _answers(url: str) -> bool:
    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


class Target(NamedTuple):
    """One server in the cache-hit race: how to reach it and which process tree to meter."""

    name: str
    port: int
    path: str
    auth: bool
    pid: int


def _tree_cpu(pid: int) -> float:
    return sum(cpu_seconds(p) for p in process_tree(pid))


def race(targets: list[Target], n: int, clients: int, rounds: int, size: int) -> dict[str, Any]:
    """Median req/s, server CPU µs and load-client CPU µs per hit of each target, round-robin."""
    for t in targets:  # warm up: connections, page cache, first-request paths
        load(t.port, [t.path] * 200, clients, t.auth)
    got: dict[str, dict[str, list[float]]] = {t.name: {} for t in targets}
    for _ in range(rounds):
        for t in targets:
            cpu, client = _tree_cpu(t.pid), time.process_time()
            secs, sizes = load(t.port, [t.path] * n, clients, t.auth)
            if set(sizes) != {size}:
                raise SystemExit(f"bench: {t.name} answered sizes {set(sizes)}, not {size}")
            sample = {
                "rate": n / secs,
                "cpu_us": (_tree_cpu(t.pid) - cpu) * 1e6 / n,
                "client_us": (time.process_time() - client) * 1e6 / n,
            }
            for key, value in sample.items():
                got[t.name].setdefault(key, []).append(value)
    return {
        name: {key: statistics.median(v) for key, v in values.items()}
        for name, values in got.items()
    }


def bench_hits(
    tmp: Path, broker: Mosquitto, fake: FakeImmich, asset: str, args: argparse.Namespace
) -> dict[str, Any]:
    """The renderer (and the renderer at `--before`) against aiohttp's static server and nginx,
    all serving the same cached picture."""
    immich = (fake.url, fake.api_key)
    path = f"/v1/frames/kitchen/pictures/{asset}.bmp"
    with ExitStack() as stack:
        stack.callback(clear_manifest, broker)
        renderer = Renderer(tmp, broker, immich, 2, "bmp16")
        stack.callback(renderer.stop)
        before = None
        if args.before:
            before = Renderer(tmp, broker, immich, 2, "bmp16", root=_tree_at(tmp, args.before))
            stack.callback(before.stop)
        publish_manifest(broker, renderer.port, {asset: "0000000a"})
        for r in (renderer, before):
            if r is not None:
                load(r.port, [path], 1, auth=True, retry_404=True)  # renders it; then hits
        (cached,) = renderer.cache.glob("*/*/*.bmp")
        rel = "/" + cached.relative_to(renderer.cache).as_posix()
        static_port, static_pid = stack.enter_context(server(STATIC_SERVER, renderer.cache))
        targets = [Target(RENDERER, renderer.port, path, True, renderer.proc.pid)]
        if before is not None:
            targets.append(
                Target(f"{RENDERER} at {args.before}", before.port, path, True, before.proc.pid)
            )
        targets.append(Target(STATIC, static_port, rel, False, static_pid))
        nginx_version, skipped = _nginx_version(), None
        if nginx_version is None:
            skipped = "nginx is not installed (Debian: `apt-get install nginx`)"
        else:
            port = free_port()
            proc = stack.enter_context(nginx.nginx(tmp / "nginx", {rel: cached.read_bytes()}, port))
            _wait(lambda: _answers(f"http://127.0.0.1:{port}{rel}"), "nginx start")
            targets.append(Target(f"nginx {nginx_version}", port, rel, False, proc.pid))
        fetched = fake.count(f"/assets/{asset}/thumbnail")
        load_before = os.getloadavg()
        results = race(targets, args.requests, args.clients, args.rounds, cached.stat().st_size)
        load_after = os.getloadavg()
        fetched = fake.count(f"/assets/{asset}/thumbnail") - fetched
    return {
        "servers": results,
        "size": cached.stat().st_size,
        "immich_fetches": fetched,
        "nginx_skipped": skipped,
        "load": (load_before[0], load_after[0]),
    }


def _nginx_version() -> str | None:
    exe = nginx.binary()
    if exe is None:
        return None
    out = subprocess.run([exe, "-v"], capture_output=True, text=True).stderr
    return out.strip().rsplit("/", 1)[-1] or "?"


def _tree_at(tmp: Path, ref: str) -> Path:
    """The renderer and common packages as they were at git `ref`, in a folder of their own."""
    where = tmp / f"at-{ref.replace('/', '_')}"
    where.mkdir()
    archive = subprocess.run(
        ["git", "archive", ref, "renderer", "common"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def _stand_in_pid(port: int) -> int:
    """The pid of the process listening on `port` (Linux /proc), for its CPU time."""
    inode = ""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":  # LISTEN
            inode = fields[9]
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == f"socket:[{inode}]":
                return int(fd.parent.parent.name)
        except OSError:
            continue
    return 0


def scaling_round(
    tmp: Path,
    broker: Mosquitto,
    immich: tuple[str, str],
    assets: list[str],
    workers: int,
    fmt: str,
    profile: Path | None = None,
) -> tuple[float, dict[str, float], float]:
    """Pictures/s from the manifest's publication to the last byte, CPU s per process, and how
    many cores other processes on the machine kept busy meanwhile."""
    paths = [f"/v1/frames/kitchen/pictures/{a}.bmp" for a in assets]
    stand_in = _stand_in_pid(int(immich[0].rsplit(":", 1)[1]))
    renderer = Renderer(tmp, broker, immich, workers, fmt, profile)
    try:
        pids = process_tree(renderer.proc.pid)
        before = [cpu_seconds(p) for p in [*pids, stand_in]]
        bench_cpu, busy = time.process_time(), machine_busy()
        started = time.perf_counter()
        publish_manifest(broker, renderer.port, dict.fromkeys(assets, "0000000b"), fmt)
        load(renderer.port, paths, 4, auth=True, retry_404=True)
        elapsed = time.perf_counter() - started
        rate = len(assets) / elapsed
        bench_cpu, busy = time.process_time() - bench_cpu, machine_busy() - busy
        used = [cpu_seconds(p) - b for p, b in zip([*pids, stand_in], before, strict=True)]
    finally:
        renderer.stop()
        clear_manifest(broker)
    cpu = {"serving": used[0], "workers": sum(used[1:-1]), "immich": used[-1], "client": bench_cpu}
    # Cores kept busy by everything else on the machine (other jobs, Mosquitto) meanwhile.
    others = max(0.0, busy - sum(cpu.values())) / elapsed
    return rate, cpu, others


def bench_scaling(
    tmp: Path, broker: Mosquitto, previews: Path, rounds: int, fmt: str, profile: Path | None
) -> dict[str, float]:
    """Best and median pictures/s over the rounds per worker count, the CPU ms per picture of
    each process on the machine (`workers: 2` rounds, medians), the cores other processes kept
    busy meanwhile (medians), and the 1-minute load average before and after."""
    assets = sorted(p.stem for p in previews.glob("*.jpg"))
    rates: dict[int, list[float]] = {1: [], 2: []}
    others: dict[int, list[float]] = {1: [], 2: []}
    cpu: dict[str, list[float]] = {}
    load_before = os.getloadavg()[0]
    with server(PREVIEW_SERVER, previews, "/api/server/ping") as (port, _):
        immich = (f"http://127.0.0.1:{port}", "bench-key")
        for i in range(rounds + (profile is not None)):
            for workers in (1, 2):
                prof = profile if workers == 2 and i == rounds else None
                rate, used, busy = scaling_round(tmp, broker, immich, assets, workers, fmt, prof)
                if prof is not None:  # cProfile slows what it watches: not a measurement
                    continue
                rates[workers].append(rate)
                others[workers].append(busy)
                for name, seconds in used.items():
                    if workers == 2:
                        cpu.setdefault(name, []).append(seconds * 1000 / len(assets))
    return {
        # Other work on the machine only ever slows a round down: the best round is the
        # measurement; the median is shown beside it.
        "1": max(rates[1]),
        "2": max(rates[2]),
        "1_median": statistics.median(rates[1]),
        "2_median": statistics.median(rates[2]),
        # Each round's `workers: 2` run against the `workers: 1` run just before it: the two
        # saw much the same load from the rest of the machine.
        "paired": statistics.median(b / a for a, b in zip(rates[1], rates[2], strict=True)),
        "paired_min": min(b / a for a, b in zip(rates[1], rates[2], strict=True)),
        "paired_max": max(b / a for a, b in zip(rates[1], rates[2], strict=True)),
        "others_1": statistics.median(others[1]),
        "others_2": statistics.median(others[2]),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **{f"{name}_ms": statistics.median(values) for name, values in cpu.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="cache-hit requests per round")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--pictures", type=int, default=192, help="pictures per scaling run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument(
        "--before",
        metavar="GIT_REF",
        help="also race the renderer as it was at this git revision (before/after a change)",
    )
    parser.add_argument("--hits-only", action="store_true", help="skip the scaling runs")
    parser.add_argument(
        "--profile",
        type=Path,
        help="also write cProfile stats of the serving process (first `workers: 2` round) here",
    )
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpdir, FakeImmich() as fake:
        tmp = Path(tmpdir)
        hit_asset = fake.add_asset(favorite=True, width=4032, height=3024)
        fake.set_preview(hit_asset, photo_preview(0), "image/jpeg")
        previews = tmp / "previews"
        previews.mkdir()
        distinct = [photo_preview(i + 1) for i in range(min(args.pictures, 24))]
        for i in range(args.pictures):  # the renderer cannot tell repeated bytes apart
            asset = f"00000000-0000-4000-8000-{i:012x}"
            (previews / f"{asset}.jpg").write_bytes(distinct[i % len(distinct)])
        broker = Mosquitto(tmp / "broker")
        broker.start()
        try:
            hits = bench_hits(tmp, broker, fake, hit_asset, args)
            scaling = {
                fmt: bench_scaling(
                    tmp,
                    broker,
                    previews,
                    args.rounds,
                    fmt,
                    args.profile and args.profile / f"{fmt}.prof",
                )
                for fmt in ("bmp16", "bmp8")
                if not args.hits_only
            }
        finally:
            broker.stop()
    text = markdown(hits, scaling, args)
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

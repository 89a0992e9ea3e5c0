"""Floods of half-sent requests against `python -m renderer` running, as systemd and Docker
start it by default, with 1,024 open files: a frame's download still succeeds and the log stays
small. The renderer runs as its own process so the open files limit is its own.
"""

from __future__ import annotations

import re
import resource
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from common import manifest
from renderer.connections import descriptors_needed
from tests.kit import ROOT, rendererkit
from tests.kit.broker import USERS, Mosquitto, free_port
from tests.kit.fakes.immich import FakeImmich
from tests.kit.rendererkit import (
    BASE,
    BMP16_SIZE,
    BridgeLink,
    bmp_ok,
    frame_url,
    rig_config,
    small_assets,
    versions,
    wait_for,
)

fake = rendererkit.fake

FLOOD = 1100
RENDERER_FILES = 1024  # the default soft and hard limit the issue was seen with
LOG_LIMIT = 1 << 20
MARGIN = 15.0  # seconds on top of the head timeout for a download under the flood
HALF_HEAD = b"GET /v1/frames/kitchen/pictures/x.bmp HTTP/1.1\r\nHost: frame\r\n"
# Starts the renderer with its open files limit lowered first (not preexec_fn: this process
# runs threads).
LAUNCH = (
    "import resource, runpy, sys; "
    f"resource.setrlimit(resource.RLIMIT_NOFILE, ({RENDERER_FILES}, {RENDERER_FILES})); "
    "sys.argv = ['renderer', *sys.argv[1:]]; "
    "runpy.run_module('renderer', run_name='__main__')"
)


@pytest.fixture
def many_files() -> Iterator[None]:
    """This process holds the flood's sockets: its soft limit goes up to the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = FLOOD + 200
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} open files for the flood's sockets; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class Renderer:
    """`python -m renderer` with 1,024 open files, its log in a file, one picture published."""

    def __init__(self, broker: Mosquitto, fake: FakeImmich, tmp: Path, **renderer: Any) -> None:
        self.port = free_port()
        doc = rig_config(broker, fake, tmp, self.port, **renderer)
        config = tmp / "titanoframe.yaml"
        config.write_text(yaml.safe_dump(doc))
        self.log_path = tmp / "renderer.log"
        with open(self.log_path, "wb") as log:  # the process keeps its own handle
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, "--config", str(config)],
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        [self.picture] = small_assets(fake, 1)
        self.url = frame_url(self.port, "kitchen") + f"{self.picture}.bmp"
        assert wait_for(lambda: self._answers("/healthz").get("broker") == "connected")
        base_url = frame_url(self.port, "kitchen")
        built = manifest.build(versions([self.picture]), None, base_url, "bmp16", 0)
        link = BridgeLink(broker)
        for topic, payload in manifest.diff(manifest.Retained(None, {}), built).messages(
            BASE, "kitchen"
        ):
            link.publish(topic, payload)
        link.close()
        assert wait_for(lambda: self.download(10).status_code == 200)

    def _answers(self, path: str) -> dict[str, Any]:
        try:
            body = requests.get(f"http://127.0.0.1:{self.port}{path}", timeout=5).json()
        except (requests.RequestException, ValueError):
            return {}
        return body if isinstance(body, dict) else {}

    def download(self, timeout: float) -> requests.Response:
        auth = {"Authorization": f"Bearer {USERS['kitchen']}"}
        return requests.get(self.url, headers=auth, timeout=timeout)

    def metric(self, name: str) -> float:
        text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=30).text
        found = re.search(rf"^titanoframe_renderer_{name} (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0.0

    def stop(self) -> str:
        """SIGTERM, wait, and the whole log."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.log_path.read_text(errors="replace")


def flood(port: int) -> list[socket.socket]:
    socks = []
    for _ in range(FLOOD):
        sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        sock.sendall(HALF_HEAD)
        socks.append(sock)
    return socks


def closed_by_server(socks: list[socket.socket], timeout: float) -> int:
    """Waits until the server has closed every socket or `timeout` passed; how many it closed."""
    closed = 0
    with selectors.DefaultSelector() as sel:
        for sock in socks:
            sock.setblocking(False)
            sel.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while closed < len(socks):
            left = deadline - time.monotonic()
            events = sel.select(left) if left > 0 else []
            if not events:
                break
            for key, _ in events:
                try:
                    data = key.fileobj.recv(1)  # type: ignore[union-attr]
                except ConnectionResetError:
                    data = b""
                if data == b"":
                    closed += 1
                    sel.unregister(key.fileobj)
    return closed


def test_a_half_open_flood_leaves_downloads_working_and_the_log_small(
    broker: Mosquitto, fake: FakeImmich, tmp_path: Path, many_files: None
) -> None:
    renderer = Renderer(broker, fake, tmp_path)  # the defaults: head_timeout 5, 256 connections
    socks: list[socket.socket] = []
    try:
        socks = flood(renderer.port)
        resp = renderer.download(5 + MARGIN)
        assert resp.status_code == 200
        bmp_ok(resp.content, BMP16_SIZE, 16)
        # Every half-sent request is closed: most to make room, the rest after head_timeout.
        assert closed_by_server(socks, 5 + MARGIN) == FLOOD
        assert renderer.metric("accept_errors_total") == 0  # the bound kept descriptors free
        assert renderer.metric("connections_shed_total") >= FLOOD - 256
        assert renderer.metric("connections_open") <= 256
    finally:
        for sock in socks:
            sock.close()
        log = renderer.stop()
    assert renderer.proc.returncode == 0
    assert len(log.encode()) < LOG_LIMIT
    assert "Traceback" not in log
    shed = [line for line in log.splitlines() if "the oldest idle one closed for a new one" in line]
    assert 1 <= len(shed) <= 2  # the first at once, the rest counted in one line


def test_a_bound_above_the_open_files_limit_still_serves_and_counts_refused_accepts(
    broker: Mosquitto, fake: FakeImmich, tmp_path: Path, many_files: None
) -> None:
    # Misconfigured: 5,000 connections allowed with 1,024 open files, and half-sent requests
    # kept for a minute. accept() fails for want of descriptors; each failure closes the oldest
    # idle connection, so the frame's turn comes.
    renderer = Renderer(broker, fake, tmp_path, max_connections=5000, head_timeout=60)
    socks: list[socket.socket] = []
    try:
        socks = flood(renderer.port)
        resp = renderer.download(MARGIN)
        assert resp.status_code == 200
        bmp_ok(resp.content, BMP16_SIZE, 16)
        failures = renderer.metric("accept_errors_total")
        assert failures >= 1
    finally:
        for sock in socks:
            sock.close()
        log = renderer.stop()
    assert renderer.proc.returncode == 0
    assert len(log.encode()) < LOG_LIMIT
    assert "Traceback" not in log
    needed = descriptors_needed(5000, 2)
    assert f"open files limit 1024 is below the {needed} that renderer.max_connections 5000" in log
    lines = [line for line in log.splitlines() if "cannot accept connections:" in line]
    assert 1 <= len(lines) <= 2, lines  # once at the first failure, then once with the count
    counts = [int(m.group(1)) if (m := re.search(r": (\d+) times in", x)) else 1 for x in lines]
    assert sum(counts) == failures

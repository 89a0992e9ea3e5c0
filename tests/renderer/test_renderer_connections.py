"""The renderer's connections: the head timeout, the bound on open connections, a malformed
request's one log line, and counted log lines (docs/protocol.md §6). Real renderers on
loopback, in-process; the floods against `python -m renderer` with a low open files limit are
in `test_renderer_flood.py`.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
from collections.abc import Callable

import pytest
import requests

from common.logsetup import OneLineFormatter
from renderer.tally import Tally
from tests.kit import rendererkit
from tests.kit.rendererkit import (
    BMP16_SIZE,
    StartRig,
    bearer,
    bmp_ok,
    small_assets,
    versions,
    wait_for,
)

fake = rendererkit.fake
start_rig = rendererkit.start_rig

HALF_HEAD = b"GET /v1/frames/kitchen/pictures/x.bmp HTTP/1.1\r\nHost: frame\r\n"
# Longer than any deadline below: a socket that waits this long for the server hangs.
WAIT = 30.0


def half_open(port: int, n: int) -> list[socket.socket]:
    """`n` connections that each send part of a request head and then nothing."""
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        sock.sendall(HALF_HEAD)
        socks.append(sock)
    return socks


def closed_by_server(sock: socket.socket, timeout: float = WAIT) -> bool:
    """Waits until the server closes the connection; False when it is still open after
    `timeout` or sends data instead."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def raw_answer(sock: socket.socket) -> tuple[int, bytes]:
    """The status and body of the one answer on a raw connection the server then closes."""
    sock.settimeout(WAIT)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# -- counted log lines -----------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def __call__(self) -> float:
        return self.now

    def later(self, delay: float, callback: Callable[[], None]) -> None:
        self.timers.append((self.now + delay, callback))

    def advance(self, seconds: float) -> None:
        """Time passes; each timer due on the way runs at its time."""
        end = self.now + seconds
        while due := sorted((t for t in self.timers if t[0] <= end), key=lambda t: t[0]):
            self.timers.remove(due[0])
            self.now = due[0][0]
            due[0][1]()
        self.now = end


def test_tally_logs_the_first_event_then_one_line_per_interval_with_the_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    logger = logging.getLogger("renderer.test.tally")
    tally = Tally(logger, "cannot accept connections", 60.0, clock=clock, later=clock.later)
    caplog.set_level(logging.INFO, logger.name)

    for _ in range(5000):
        tally.note("Too many open files")
        clock.advance(0.001)
    assert [r.getMessage() for r in caplog.records] == [
        "cannot accept connections: Too many open files"
    ]
    assert len(clock.timers) == 1  # one timer for the whole burst, not one per event

    clock.advance(60.0)  # the burst ended; its timer reports it
    assert caplog.records[-1].getMessage() == (
        "cannot accept connections: 4999 times in 60 s, the last: Too many open files"
    )
    assert len(caplog.records) == 2 and tally.total == 5000

    clock.advance(600.0)  # quiet: nothing to say
    tally.note("Too many open files")  # a new spell is reported at once again
    assert len(caplog.records) == 3
    assert caplog.records[-1].getMessage() == "cannot accept connections: Too many open files"
    tally.flush()  # nothing counted since that line
    assert len(caplog.records) == 3 and not clock.timers


# -- head timeout and the bound --------------------------------------------------------------


def test_a_half_sent_head_is_closed_after_head_timeout_and_frames_are_served(
    start_rig: StartRig,
) -> None:
    rig = start_rig(head_timeout=0.5)
    ids = small_assets(rig.fake, 1)
    rig.publish_manifest("kitchen", versions(ids), "bmp16")
    [slow] = half_open(rig.port, 1)
    assert closed_by_server(slow)
    url, auth = rig.url("kitchen", f"{ids[0]}.bmp"), bearer("kitchen")
    kept = requests.Session()  # a frame's keep-alive connection, idle after its answer
    bmp_ok(kept.get(url, headers=auth, timeout=WAIT).content, BMP16_SIZE, 16)
    assert wait_for(lambda: rig.service.listener.open == 0)  # closed too, after head_timeout
    assert kept.get(url, headers=auth, timeout=WAIT).status_code == 200  # on a new connection
    kept.close()


def test_at_the_bound_a_new_connection_closes_the_oldest_idle_one(start_rig: StartRig) -> None:
    rig = start_rig(max_connections=16, head_timeout=60)
    socks = half_open(rig.port, 16)
    assert wait_for(lambda: rig.service.listener.open == 16)
    assert rig.service.metrics.get("connections_shed_total") == 0
    newest = half_open(rig.port, 1)
    assert closed_by_server(socks[0])  # the oldest made room
    assert wait_for(lambda: rig.service.listener.open == 16)
    assert rig.service.metrics.get("connections_shed_total") == 1
    health = requests.get(f"http://127.0.0.1:{rig.port}/healthz", timeout=WAIT)
    assert health.status_code == 200  # and again: the next oldest goes
    assert closed_by_server(socks[1])
    assert rig.service.metrics.get("connections_shed_total") == 2
    for sock in socks + newest:
        sock.close()


def test_when_every_connection_is_busy_a_new_one_is_answered_503(start_rig: StartRig) -> None:
    rig = start_rig(max_connections=16, head_timeout=60, upstream_timeout=60)
    ids = small_assets(rig.fake, 1)
    rig.fake.delay(WAIT, path=f"/assets/{ids[0]}/thumbnail")  # Immich stalls every preview
    rig.publish_manifest("open", versions(ids), "bmp16")  # its pre-render stalls too
    path = f"/v1/frames/open/pictures/{ids[0]}.bmp"
    head = f"GET {path} HTTP/1.1\r\nHost: f\r\nConnection: close\r\n\r\n".encode()
    busy = [socket.create_connection(("127.0.0.1", rig.port), timeout=WAIT) for _ in range(16)]
    for sock in busy:
        sock.sendall(head)
    assert wait_for(lambda: rig.service.metrics.get("cache_misses_total") == 16)
    late = socket.create_connection(("127.0.0.1", rig.port), timeout=WAIT)
    status, body = raw_answer(late)  # before it sent anything
    assert status == 503 and json.loads(body)["error"] == "busy"
    # A client that sends its request at once reads the answer too, not a reset.
    refused = requests.get(f"http://127.0.0.1:{rig.port}/healthz", timeout=WAIT)
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
    assert rig.service.metrics.get("connections_refused_total") == 2
    assert rig.service.metrics.get("connections_shed_total") == 0
    assert rig.service.listener.open == 16
    for pid in rig.service.pipeline.pool.pids():  # ends the stall: the job fails, 502
        os.kill(pid, signal.SIGKILL)
    assert [raw_answer(sock)[0] for sock in busy] == [502] * 16


# -- malformed requests ----------------------------------------------------------------------


def test_a_malformed_request_is_one_short_log_line_and_a_json_400(
    start_rig: StartRig, caplog: pytest.LogCaptureFixture
) -> None:
    rig = start_rig()
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    sock = socket.create_connection(("127.0.0.1", rig.port), timeout=WAIT)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: f\r\nno colon in this header line\r\n\r\n")
    status, body = raw_answer(sock)
    assert status == 400 and json.loads(body) == {
        "error": "bad_request",
        "detail": "malformed HTTP request",
    }
    ours = [r for r in caplog.records if r.name.startswith(("renderer", "aiohttp", "asyncio"))]
    assert len(ours) == 1, [r.getMessage() for r in ours]
    [record] = ours
    assert record.levelno == logging.INFO and record.exc_info is None
    line = OneLineFormatter().format(record)
    assert "malformed request answered 400: 127.0.0.1 400 " in line
    assert "Traceback" not in line and len(line) < 300

    for _ in range(3):  # more of them within the interval are counted, not logged one by one
        sock = socket.create_connection(("127.0.0.1", rig.port), timeout=WAIT)
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 200 + b"\r\n\r\n")
        assert raw_answer(sock)[0] == 400
    assert rig.service.metrics.get("malformed_requests_total") == 4
    ours = [r for r in caplog.records if r.name.startswith(("renderer", "aiohttp", "asyncio"))]
    assert len(ours) == 1
    assert rig.metric("malformed_requests_total") == 4

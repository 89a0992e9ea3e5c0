"""`common.sdnotify` against a real AF_UNIX datagram socket, as systemd provides one."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from common import sdnotify

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="needs AF_UNIX sockets")


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_ready_reaches_the_socket(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    assert sdnotify.notify(sdnotify.READY, {"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1"


def test_status_is_one_line(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    assert sdnotify.status("syncing\nkitchen", {"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"STATUS=syncing kitchen"


def test_abstract_namespace_address() -> None:
    name = f"titanoframe-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sdnotify.notify(sdnotify.WATCHDOG, {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_uses_process_environment(
    listener: tuple[socket.socket, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    assert sdnotify.notify(sdnotify.STOPPING)
    assert sock.recv(4096) == b"STOPPING=1"


@pytest.mark.parametrize("value", ["", "relative/path", "vsock:2:1234"])
def test_no_socket_is_a_no_op(value: str) -> None:
    assert sdnotify.notify(sdnotify.READY, {"NOTIFY_SOCKET": value}) is False
    assert sdnotify.notify(sdnotify.READY, {}) is False


def test_never_raises_when_nobody_listens(tmp_path: Path) -> None:
    assert sdnotify.notify(sdnotify.READY, {"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False
    assert sdnotify.notify(sdnotify.READY, {"NOTIFY_SOCKET": "/bad\0path"}) is False


def test_watchdog_interval_is_half_the_timeout() -> None:
    pid, other = str(os.getpid()), str(os.getpid() + 1)
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": pid}) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": other}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert sdnotify.watchdog_interval({}) is None

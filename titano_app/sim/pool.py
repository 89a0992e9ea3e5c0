"""A socket pool over CPython's `socket` that can lose the network on demand. Does network I/O.

`FlakyPool.down = True` is Wi-Fi gone: every open socket is closed (peers see the connection
drop) and every call fails with OSError until `down` is False again. `on_transfer(nbytes)`, when
set, runs after every send and receive that moved bytes: a test moves its clock there to play a
slow network (a receive that times out moves nothing and costs nothing).

Sockets are TCP_NODELAY: MiniMQTT writes one packet in several small sends, and with Nagle's
algorithm each later one waits for the peer's delayed ACK (40 ms on Linux loopback).
"""

from __future__ import annotations

import errno
import socket
import weakref
from collections.abc import Callable
from typing import Any

_TRANSFERS = ("send", "sendall", "recv", "recv_into")


def _size(result: Any) -> int:
    return result if isinstance(result, int) else len(result)


class FlakySocket:
    def __init__(self, sock: socket.socket, pool: FlakyPool) -> None:
        self._sock = sock
        self._pool = pool

    def _check(self) -> None:
        if self._pool.down:
            self._sock.close()
            raise OSError(errno.ENETDOWN, "network is down")

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._sock, name)
        if not callable(attr) or name in ("close", "fileno"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._check()
            result = attr(*args, **kwargs)
            hook = self._pool.on_transfer
            if hook is not None and name in _TRANSFERS:
                hook(len(args[0]) if name == "sendall" else _size(result))
            return result

        return call

    def __enter__(self) -> FlakySocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


class FlakyPool:
    AF_INET = socket.AF_INET
    SOCK_STREAM = socket.SOCK_STREAM
    SOCK_DGRAM = socket.SOCK_DGRAM
    IPPROTO_TCP = socket.IPPROTO_TCP
    timeout = socket.timeout

    def __init__(self) -> None:
        self._down = False
        self.sockets_opened = 0
        self.on_transfer: Callable[[int], None] | None = None
        self._open: weakref.WeakSet[FlakySocket] = weakref.WeakSet()

    @property
    def down(self) -> bool:
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self._down = value
        if value:
            for s in list(self._open):
                s._sock.close()

    def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        if self._down:
            raise OSError(errno.ENETDOWN, "network is down")
        return socket.getaddrinfo(*args, **kwargs)

    def socket(self, family: int = AF_INET, type: int = SOCK_STREAM, proto: int = 0) -> Any:
        if self._down:
            raise OSError(errno.ENETDOWN, "network is down")
        raw = socket.socket(family, type, proto)
        if type == socket.SOCK_STREAM:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s = FlakySocket(raw, self)
        self._open.add(s)
        self.sockets_opened += 1
        return s

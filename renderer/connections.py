"""The renderer's connections: a bound on how many are open, a timeout for request heads, one
line for a malformed request, and counted lines for refused `accept()`s. Does socket I/O.

Anyone on the LAN can open connections and never finish a request. Each holds a file
descriptor, and once the process runs out, nobody is served: not the frames, not `/healthz`.
So every connection must send a complete request head within `renderer.head_timeout` of
opening or of its previous answer (aiohttp's keep-alive timer, which already runs from the
moment a connection opens, is set to it), and at most `renderer.max_connections` are open: a
connection beyond that closes the oldest idle one (waiting for a request head), or is answered
503 at once when every connection is busy answering. A flood of half-sent requests then cycles
through the idle slots while a frame's request, complete in one packet, is answered at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import resource
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from renderer.tally import Tally

log = logging.getLogger(__name__)

# Connections accepted in one pass of asyncio's accept loop (the listen backlog, too): they hold
# descriptors before the gate sees them, so the descriptor budget counts them on top.
BACKLOG = 128
# Descriptors that are not client sockets: the listening socket, the event loop, the broker,
# the log, the forkserver; each render worker adds two pipe ends.
BASE_FDS = 64
# The longest piece of a malformed request quoted in its log line.
QUOTE = 120
# A refused connection is closed this many seconds after its 503 at the latest.
REFUSE_LINGER = 2.0
REFUSAL_BODY = b'{"error": "busy", "detail": "every connection is busy; try again shortly"}'
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: "
    + str(len(REFUSAL_BODY)).encode()
    + b"\r\n\r\n"
    + REFUSAL_BODY
)
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


def descriptors_needed(max_connections: int, workers: int) -> int:
    """Open files the renderer may need: a socket and a picture file per connection, what one
    accept pass takes before the bound applies, and its own."""
    return 2 * max_connections + BACKLOG + BASE_FDS + 2 * workers


def raise_open_files_limit(needed: int) -> float:
    """Raise this process's soft RLIMIT_NOFILE towards `needed` (never above the hard limit,
    never lower); returns the soft limit as it is now (infinity for none)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return math.inf
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError):  # e.g. a seccomp filter without @resources: keep it
            return soft
        soft = target
    return soft


class GatedHandler(RequestHandler):
    """aiohttp's connection handler, reporting to the `Gate` when it opens and closes."""

    def __init__(self, gate: Gate, manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.gate = gate
        self._malformed = False
        self._refused = False

    @property
    def idle(self) -> bool:
        """Waiting for a request head (new, half-sent or kept alive), not answering one."""
        # aiohttp's own flag (set from the complete head to the last byte sent); the version is
        # pinned, and test_renderer_connections.py sees a busy connection survive the bound.
        return not self._request_in_progress

    @property
    def peer(self) -> str:
        """The client's address, for a log line."""
        peer = self.peername
        return str(peer[0]) if isinstance(peer, tuple) else "-"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.gate.opened(self)

    def connection_lost(self, exc: BaseException | None) -> None:
        self.gate.closed(self)
        super().connection_lost(exc)

    def refuse(self) -> None:
        """Answer 503 without parsing the request (every connection is busy), then close.

        Closing at once would reset the connection if the client's request had arrived
        unread, and a reset may destroy the answer before the client reads it. So the answer
        is followed by a FIN, what the client sends is read and dropped, and the connection
        closes when the client closes it, or after `REFUSE_LINGER`.
        """
        self._refused = True
        if self.transport is None:
            return
        self.transport.write(REFUSAL)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(REFUSE_LINGER, self.force_close)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A malformed request is the client's doing: one line and a JSON 400, no traceback."""
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        self._malformed = True
        self.gate.malformed(request.remote, status, exc)
        body = {"error": "bad_request", "detail": "malformed HTTP request"}
        resp = web.json_response(body, status=status)
        resp.force_close()
        return resp

    def log_access(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float | None
    ) -> None:
        if self._malformed:  # `handle_error` wrote its line; the request line here is made up
            return
        super().log_access(request, response, time)


class Gate:
    """The protocol factory of the renderer's listening socket: at most `limit` connections.

    Connections are kept oldest first; the event loop's thread is the only one that uses it.
    """

    def __init__(
        self,
        server: web.Server,
        limit: int,
        head_timeout: float,
        on_event: Callable[[str, str], None],
        **handler_kwargs: Any,
    ) -> None:
        self.server, self.limit = server, limit
        self.on_event = on_event  # ("shed" | "refused" | "malformed", detail)
        self._kwargs = {"keepalive_timeout": head_timeout, **handler_kwargs}
        self._open: dict[GatedHandler, None] = {}  # insertion order: oldest first

    def __call__(self) -> GatedHandler:
        return GatedHandler(self, self.server, loop=asyncio.get_running_loop(), **self._kwargs)

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, handler: GatedHandler) -> None:
        self._open[handler] = None
        if len(self._open) > self.limit and not self.shed(keep=handler):
            self._open.pop(handler, None)
            self.on_event("refused", handler.peer)
            handler.refuse()

    def closed(self, handler: GatedHandler) -> None:
        self._open.pop(handler, None)

    def shed(self, keep: GatedHandler | None = None) -> bool:
        """Close the oldest idle connection but `keep`; False when none is idle."""
        for handler in self._open:
            if handler is not keep and handler.idle:
                del self._open[handler]
                self.on_event("shed", handler.peer)
                handler.force_close()
                return True
        return False

    def malformed(self, remote: str | None, status: int, exc: HttpProcessingError) -> None:
        text = exc.message if isinstance(exc.message, str) else repr(exc.message)
        if len(text) > QUOTE:
            text = text[:QUOTE] + "…"
        self.on_event("malformed", f"{remote or '-'} {status} {text}")


class GatedSite(web.BaseSite):
    """`web.TCPSite`, but each connection goes through a `Gate`."""

    __slots__ = ("_gate", "_host", "_port")

    def __init__(self, runner: web.BaseRunner, gate: Gate, host: str, port: int) -> None:
        super().__init__(runner, backlog=BACKLOG)
        self._gate, self._host, self._port = gate, host, port

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        self._server = await asyncio.get_running_loop().create_server(
            self._gate, self._host, self._port, backlog=self._backlog, reuse_address=True
        )


def is_accept_failure(context: dict[str, Any]) -> bool:
    """Whether an event loop error is `accept()` failing for want of descriptors or memory."""
    exc = context.get("exception")
    return (
        isinstance(exc, OSError)
        and exc.errno in OUT_OF_RESOURCES
        and "accept" in str(context.get("message", ""))
    )


def is_stale_accept_retry(context: dict[str, Any]) -> bool:
    """Whether an event loop error is a retry of a failed `accept()` that asyncio scheduled
    for a listening socket closed since (the renderer stopping): nothing is left to retry."""
    return isinstance(context.get("exception"), ValueError) and "_start_serving" in str(
        context.get("message", "")
    )


# Each kind of connection event: its log line's words ({limit}: max_connections) and level.
EVENTS = {
    "accept": ("cannot accept connections", logging.WARNING),
    "shed": (
        "{limit} connections open, the oldest idle one closed for a new one",
        logging.WARNING,
    ),
    "refused": ("{limit} connections open and busy, a new one answered 503", logging.WARNING),
    "malformed": ("malformed request answered 400", logging.INFO),
}


class Listener:
    """The listening socket with its gate; connection events counted, each kind logged at
    most once per `interval`, and `accept()` failures handled instead of asyncio's traceback
    per attempt."""

    def __init__(
        self,
        host: str,
        port: int,
        limit: int,
        head_timeout: float,
        count: Callable[[str], None],
        interval: float,
    ) -> None:
        self.host, self.port, self.limit, self.head_timeout = host, port, limit, head_timeout
        self.count, self.interval = count, interval
        self.gate: Gate | None = None
        self.tallies: dict[str, Tally] = {}

    @property
    def open(self) -> int:
        return len(self.gate) if self.gate is not None else 0

    async def start(self, runner: web.BaseRunner, **handler_kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        self.tallies = {
            kind: Tally(log, what.format(limit=self.limit), self.interval, level, loop.call_later)
            for kind, (what, level) in EVENTS.items()
        }
        assert runner.server is not None, "runner.setup() first"
        self.gate = Gate(runner.server, self.limit, self.head_timeout, self.event, **handler_kwargs)
        loop.set_exception_handler(self._loop_error)
        await GatedSite(runner, self.gate, self.host, self.port).start()

    def event(self, kind: str, detail: str) -> None:
        self.count(kind)
        self.tallies[kind].note(detail)

    def flush(self) -> None:
        for tally in self.tallies.values():
            tally.flush()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if is_accept_failure(context):
            exc = context["exception"]
            self.event("accept", f"{exc.strerror or exc} with {self.open} connections open")
            if self.gate is not None:
                self.gate.shed()  # frees a descriptor for asyncio's next try, a second later
        elif not is_stale_accept_retry(context):
            loop.default_exception_handler(context)

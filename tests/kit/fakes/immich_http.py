"""The fake Immich's HTTP side: a threaded loopback server, auth, validation, faults. Network I/O.

Order per request is Immich's: route → injected faults (they stand for the network and the
proxy in front) → API key (401/403 with Immich's wording) → request validation against the
vendored OpenAPI document (400 "Validation failed" with zod-style issues; unknown body keys
are dropped, as Immich does) → the endpoint. Every request is recorded; bodies of responses
are kept too when `record_bodies` is set.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import traceback
from contextlib import nullcontext
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from tests.kit.fakes.immich_model import Library
from tests.kit.fakes.immich_routes import (
    ROUTES,
    Call,
    ImageCache,
    Reply,
    Route,
    error_reply,
)
from tests.kit.fakes.immich_rows import ApiKey
from tests.kit.fakes.immich_search import SearchCache
from tests.kit.openapi import spec

# How Immich words each status the fault switches can inject.
_FAULT_MESSAGES = {
    400: "Bad Request",
    401: "Invalid API key",
    403: "Missing required permission: asset.read",
    404: "Not Found",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

GARBAGE = b'{"assets": {"items": [{"id": '
_ROUTES = {(r.method, r.template): r for r in ROUTES}


class Request(NamedTuple):
    method: str
    path: str  # as requested, with /api
    query: dict[str, str]
    body: Any  # decoded JSON, raw text if not JSON, None if empty


@dataclass
class Exchange:
    request: Request
    headers: dict[str, str]  # request headers, names lower-case
    status: int
    content_type: str
    body: bytes
    faults: frozenset[str]


@dataclass
class Fault:
    kind: str  # status | delay | truncate | garbage | no_length | hang_up
    remaining: int | None  # None: until cleared
    path: str | None  # path prefix with /api; None: every path
    status: int = 500
    seconds: float = 0.0


@dataclass
class State:
    """What the handler threads share with the test."""

    lib: Library
    record_bodies: bool = False
    version: tuple[int, int, int] = (3, 0, 3)
    requests: list[Request] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    bytes_sent: int = 0
    connections_accepted: int = 0
    open_connections: set[socket.socket] = field(default_factory=set)
    searches: SearchCache = field(default_factory=SearchCache)
    images: ImageCache = field(default_factory=ImageCache)
    stopping: threading.Event = field(default_factory=threading.Event)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def take_faults(self, path: str) -> list[Fault]:
        """The faults that hit this request; counted ones are used up."""
        with self.guard:
            hit = [f for f in self.faults if f.path is None or path.startswith(f.path)]
            for fault in hit:
                if fault.remaining is not None:
                    fault.remaining -= 1
            self.faults = [f for f in self.faults if f.remaining is None or f.remaining > 0]
            return hit


def _decode(raw: bytes) -> tuple[Any, bool]:
    """The body as JSON, and whether it parsed."""
    if not raw:
        return None, True
    try:
        return json.loads(raw), True
    except ValueError:
        return raw.decode("utf-8", "replace"), False


def _authenticate(lib: Library, route: Route, secret: str | None) -> ApiKey | Reply | None:
    if route.permission is None:
        return None
    if not secret:
        return error_reply(401, "Authentication required")
    key = lib.keys.get(secret)
    if key is None:
        return error_reply(401, "Invalid API key")
    wanted = route.permission
    if wanted is not False and "all" not in key.permissions and wanted not in key.permissions:
        return error_reply(403, f"Missing required permission: {wanted}")
    return key


def answer(state: State, req: Request, raw: bytes, secret: str | None) -> Reply:
    """The reply to one request, faults aside."""
    found = spec().find(req.method, req.path) if req.path.startswith("/api/") else None
    if found is None:
        return error_reply(404, f"Cannot {req.method} {req.path}")
    op, params = found
    route = _ROUTES.get((op.method, op.template))
    if route is None:
        return error_reply(501, f"The fake Immich does not implement {op.method} {op.template}")
    auth = _authenticate(state.lib, route, secret)
    if isinstance(auth, Reply):
        return auth
    body, parsed = _decode(raw)
    if not parsed:
        return error_reply(400, "Request body is not valid JSON")
    if body is None and op.raw.get("requestBody"):
        body = {}  # Express hands an empty body to validation as {}
    issues = spec().request_issues(op, params, req.query, body, strict=False)
    if issues:
        return error_reply(400, "Validation failed", errors=[i.zod() for i in issues])
    call = Call(
        state.lib, auth, params, req.query, body, state.searches, state.images, state.version
    )
    with state.lib.lock if route.locked else nullcontext():
        return route.handler(call)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        state = self.server.state
        with state.guard:
            state.connections_accepted += 1
            state.open_connections.add(self.connection)

    def finish(self) -> None:
        state = self.server.state
        with state.guard:
            state.open_connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        state = self.server.state
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        req = Request(method, url.path, dict(parse_qsl(url.query, keep_blank_values=True)),
                      _decode(raw)[0])  # fmt: skip
        state.requests.append(req)
        faults = state.take_faults(url.path)
        kinds = frozenset(f.kind for f in faults)
        for fault in faults:
            if fault.kind == "delay" and state.stopping.wait(fault.seconds):
                return
        if "hang_up" in kinds:  # read, then closed without an answer
            self.close_connection = True
            return
        status_fault = next((f for f in faults if f.kind == "status"), None)
        if status_fault is not None:
            reply = error_reply(
                status_fault.status, _FAULT_MESSAGES.get(status_fault.status, "Error")
            )
        else:
            reply = self._answer(state, req, raw)
        if "garbage" in kinds:
            reply = Reply(200, GARBAGE)
        if state.record_bodies:
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.exchanges.append(
                Exchange(req, headers, reply.status, reply.content_type, reply.body, kinds)
            )
        self._write(state, reply, kinds)

    def _answer(self, state: State, req: Request, raw: bytes) -> Reply:
        try:
            return answer(state, req, raw, self.headers.get("x-api-key"))
        except Exception:
            state.server_errors.append(traceback.format_exc())
            return error_reply(500, "Internal server error")

    def _write(self, state: State, reply: Reply, kinds: frozenset[str]) -> None:
        body = reply.body
        closing = bool(kinds & {"truncate", "no_length"})
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        if "no_length" not in kinds:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Immich-Cid", secrets.token_hex(8))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if closing:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if "truncate" in kinds:
            body = body[: len(body) // 2]
        # Counted before writing, so a client that has read the reply always sees it counted.
        self._count(state, len(body))
        try:
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self._count(state, -len(body))
            self.close_connection = True

    @staticmethod
    def _count(state: State, n: int) -> None:
        with state.guard:
            state.bytes_sent += n


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: State, port: int = 0) -> None:
        self.state = state
        super().__init__(("127.0.0.1", port), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-reply is normal here (timeouts, size limits).
        text = traceback.format_exc()
        if "BrokenPipeError" not in text and "ConnectionResetError" not in text:
            self.state.server_errors.append(text)

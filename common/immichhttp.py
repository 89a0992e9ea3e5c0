"""The Immich client's HTTP side: one keep-alive connection, bounded reads, errors. Network I/O.

Standard library only (`http.client`): the daemons import the client, and an HTTP library on
top of `http.client` and `ssl` would cost them several MiB of memory for nothing they use.
Requests go out one at a time on one persistent connection. A connection the server closed
while idle (its keep-alive timeout) is seen before it is reused and opened again; one found
closed only on sending is opened again and the request sent once more; a fresh connection's
failure is the error. After any failure, a body left unread or a
`Connection: close`, the next request opens a new connection. Library errors become the
project's `ImmichError` family; no message ever contains the API key.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
from typing import Any, Self
from urllib.parse import urlencode, urlsplit

USER_AGENT = "titanoframe/0.1"
_CHUNK = 64 << 10
# Error bodies are read for their message only; nothing sane is bigger.
_ERROR_BODY_LIMIT = 64 << 10
# A search page of 1000 assets with exif is about 2 MB; far past that is not Immich.
_JSON_LIMIT = 256 << 20
# Immich's answer for an asset whose files (previews) are not there yet.
_NOT_READY = "Asset media not found"
# How sending on, or awaiting the answer from, a connection the server has closed fails
# (RemoteDisconnected is both; BrokenPipe and ConnectionReset are ConnectionErrors; TLS may
# say it as an EOF or a close_notify instead).
_STALE = (ConnectionError, http.client.BadStatusLine, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class ImmichError(Exception):
    """Base of every Immich failure; `reason` is one line, safe to log and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImmichUnreachable(ImmichError):
    """Connection refused, name not resolved, or no answer within the timeout."""


class ImmichAuthError(ImmichError):
    """401 (bad key) or 403 (key lacks a scope); the reason is Immich's own message."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class ImmichResponseError(ImmichError):
    """5xx, garbage or truncated body, unexpected shape, or a body over the size limit."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class ImmichNotFound(ImmichError):
    """Unknown id: Immich answers 404, or 400 'Not found or no … access'."""


class ImmichNotReady(ImmichError):
    """The asset exists but its preview does not yet: a fresh upload whose thumbnail job has
    not run (Immich answers 404 'Asset media not found' for seconds, or longer during imports).
    """


def _api_base(url: str) -> str:
    base = url.strip().rstrip("/")
    return base if base.endswith("/api") else base + "/api"


def _message(body: bytes) -> str:
    """Immich's `message` (with its validation issues), or a short excerpt of the body."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and data.get("message") is not None:
        msg = data["message"]
        text = "; ".join(map(str, msg)) if isinstance(msg, list) else str(msg)
        issues = data.get("errors")
        if isinstance(issues, list) and issues:
            text += ": " + "; ".join(_issue_text(i) for i in issues[:5])
        return text
    return body[:200].decode("utf-8", "replace").strip() or "no message"


def _issue_text(issue: Any) -> str:
    if not isinstance(issue, dict):
        return str(issue)
    where = ".".join(str(p) for p in issue.get("path") or [])
    return f"{where}: {issue.get('message')}" if where else str(issue.get("message"))


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class ImmichHttp:
    """Requests to one Immich's `/api`, with counters of requests and body bytes read.

    One per thread: the connection is not shared.
    """

    def __init__(self, url: str, api_key: str, timeout: float = 10.0) -> None:
        self.base = _api_base(url)
        self.timeout = timeout
        self._key = api_key
        self._conn: http.client.HTTPConnection | None = None
        self._prefix = ""  # the base URL's path, ending in /api
        self.requests_made = 0
        self.bytes_received = 0

    def close(self) -> None:
        """Close the connection; the next request opens a new one."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _connection(self) -> http.client.HTTPConnection:
        """The open connection, or a new one to the base URL's host (ValueError: bad URL)."""
        if self._conn is None:
            parts = urlsplit(self.base)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {self.base}")
            if parts.scheme == "https":
                context = ssl.create_default_context()
                self._conn = http.client.HTTPSConnection(
                    parts.hostname, parts.port, timeout=self.timeout, context=context
                )
            else:
                self._conn = http.client.HTTPConnection(
                    parts.hostname, parts.port, timeout=self.timeout
                )
            self._prefix = parts.path
        return self._conn

    def _send(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> http.client.HTTPResponse:
        """Send one request with the body left unread; library errors become ImmichErrors."""
        headers = {"x-api-key": self._key, "Accept": "application/json", "User-Agent": USER_AGENT}
        where = f"{method} /api{path}"
        target = path + ("?" + urlencode(params) if params else "")
        self.requests_made += 1
        try:
            payload = None if body is None else json.dumps(body, allow_nan=False).encode()
            if payload is not None:
                headers["Content-Type"] = "application/json"
            return self._exchange(method, target, payload, headers)
        except TimeoutError as exc:
            raise ImmichUnreachable(f"{where} timed out: {self._scrub(_one_line(exc))}") from None
        except http.client.InvalidURL as exc:
            msg = f"{where} could not be sent: {self._scrub(_one_line(exc))}"
            raise ImmichError(msg) from None
        except (OSError, http.client.HTTPException) as exc:  # a refused certificate included
            msg = f"{where} failed to connect: {self._scrub(_one_line(exc))}"
            raise ImmichUnreachable(msg) from None
        except ValueError as exc:  # not an http(s) URL, a NaN in the body
            msg = f"{where} could not be sent: {self._scrub(_one_line(exc))}"
            raise ImmichError(msg) from None

    def _exchange(
        self, method: str, target: str, payload: bytes | None, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        """The answer's status and headers; a reused connection found closed is tried anew."""
        sock = self._conn.sock if self._conn is not None else None
        if sock is not None and select.select([sock], [], [], 0)[0]:
            # Readable while idle: the server closed it (Node, which Immich runs on, closes
            # idle connections after 5 s by default; a poll comes every 30). Not written to,
            # and what follows is a fresh connection, whose failure is the error: a request
            # is sent twice only when the server closes in the instant between this look and
            # the send.
            self.close()
        reused = self._conn is not None and self._conn.sock is not None
        try:
            return self._attempt(method, target, payload, headers)
        except _STALE:
            if not reused:
                raise
        return self._attempt(method, target, payload, headers)

    def _attempt(
        self, method: str, target: str, payload: bytes | None, headers: dict[str, str]
    ) -> http.client.HTTPResponse:
        conn = self._connection()
        try:
            conn.request(method, self._prefix + target, payload, headers)
            return conn.getresponse()
        except BaseException:
            self.close()
            raise

    def _read(self, resp: http.client.HTTPResponse, where: str, limit: int) -> bytes:
        """The whole body, or an error once it passes `limit` bytes or breaks off."""
        declared = resp.getheader("Content-Length", "")
        if declared.isdecimal() and int(declared) > limit:
            self.close()
            raise ImmichResponseError(
                f"{where} answered {declared} bytes, over the {limit}-byte limit", resp.status
            )
        chunks: list[bytes] = []
        total = 0
        done = False
        try:
            while chunk := resp.read(_CHUNK):
                total += len(chunk)
                self.bytes_received += len(chunk)
                if total > limit:
                    raise ImmichResponseError(
                        f"{where} answered more than the {limit}-byte limit", resp.status
                    )
                chunks.append(chunk)
            if resp.length:  # http.client ends a body shorter than its Content-Length quietly
                raise http.client.IncompleteRead(b"".join(chunks), resp.length)
            done = True
        except OSError as exc:
            raise ImmichUnreachable(f"{where} broke off: {self._scrub(_one_line(exc))}") from None
        except http.client.HTTPException as exc:
            msg = f"{where} sent a truncated body: {self._scrub(_one_line(exc))}"
            raise ImmichResponseError(msg, resp.status) from None
        finally:
            if not (done and resp.isclosed()):
                self.close()  # a body not read to its end leaves the connection unusable
        return b"".join(chunks)

    def _raise_for_status(self, resp: http.client.HTTPResponse, where: str) -> None:
        status = resp.status
        if status < 300:
            return
        try:
            body = self._read(resp, where, _ERROR_BODY_LIMIT)
        except ImmichError:
            body = b""  # the status alone still says what happened
        text = _message(body)
        reason = f"{where} → {status}: {self._scrub(text)}"
        if status in (401, 403):
            raise ImmichAuthError(self._scrub(text), status)
        if status == 404 and text.startswith(_NOT_READY):
            raise ImmichNotReady(reason)
        if status == 404 or (status == 400 and text.startswith("Not found or no")):
            raise ImmichNotFound(reason)
        raise ImmichResponseError(reason, status)

    def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        """One JSON request and its decoded answer."""
        where = f"{method} /api{path}"
        resp = self._send(method, path, params=params, body=body)
        self._raise_for_status(resp, where)
        raw = self._read(resp, where, _JSON_LIMIT)
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise ImmichResponseError(f"{where} answered invalid JSON", resp.status) from None

    def _write(self, method: str, path: str, body: Any) -> None:
        """A request whose answer body does not matter (204, or JSON that is not read)."""
        where = f"{method} /api{path}"
        resp = self._send(method, path, body=body)
        self._raise_for_status(resp, where)
        self._read(resp, where, _ERROR_BODY_LIMIT)

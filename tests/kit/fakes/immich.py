"""A faithful fake Immich 3.x on loopback, for tests, benchmarks and the demo. Network I/O.

    with FakeImmich() as fake:
        photo = fake.add_asset(favorite=True, city="Lyon")
        client = ImmichClient(fake.url, fake.api_key)

Seed and change the library through the `Library` methods (`add_asset`, `add_favorites`,
`favorite`, `edit`, `trash`, `delete`, `add_album`, `add_person`, `add_face`, `add_tag`,
`add_memory`, …); set `fake.now` to control `updatedAt`, and `set_preview` to make an
asset's preview chosen bytes (a hostile body, a photo-like JPEG).

It behaves as a real Immich 3 does where that surprises: an edit (`edit(id, rotate=90)`)
changes `width`/`height` but the preview stays unedited unless asked with `edited=true`; a
partner's asset reads `isFavorite: false` though the favourites filter finds it; a fresh
upload (`add_asset(previewed=False)`) has no thumbhash and its preview answers 404 "Asset media
not found" until `make_previews`; members of a `stack` are all listed, and `withStacked: true`
names their primary. It takes the writes a frame's like and hide make, as Immich 3 does:
`PUT /assets` (`isFavorite`; a row change, so `updatedAt` moves) refuses the whole call with
400 "Not found or no asset.update access" when one asset is not the key user's own (a
partner's); `POST /tags` refuses a name already taken; `PUT /tags/{id}/assets` answers one
result per asset (`duplicate`, or `no_permission` for a partner's). Break it on purpose with
`fail_next`, `delay`, `truncate_next`, `garbage_next`, `no_length_next` and `hang_up_next`,
each for one path prefix or all; `hang_up` closes the open connections, as a keep-alive
timeout closes idle ones. Inspect traffic with `requests`, `count()`, `bytes_sent` and
`connections_accepted`.

For a demo, run it on its own: `python -m tests.kit.fakes.immich --port 2283 --favorites 50`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from tests.kit.fakes.immich_catalog import Catalog
from tests.kit.fakes.immich_http import Exchange, Fault, Request, Server, State

__all__ = ["Exchange", "FakeImmich", "Request"]


def _api_path(prefix: str | None) -> str | None:
    if prefix is None or prefix.startswith("/api/") or prefix == "/api":
        return prefix
    return "/api" + (prefix if prefix.startswith("/") else "/" + prefix)


class FakeImmich(Catalog):
    """The library plus the server that answers for it."""

    def __init__(
        self,
        permissions: Iterable[str] = ("all",),
        *,
        record_bodies: bool = False,
        port: int = 0,
        api_key: str | None = None,
    ) -> None:
        super().__init__()
        self.api_key = self.add_key(permissions, secret=api_key)
        self.state = State(self, record_bodies=record_bodies)
        self._port = port
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeImmich:
        self.state.stopping.clear()
        self._server = Server(self.state, self._port)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.state.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeImmich:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake Immich is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL as a user configures it (`http://host:port`, without /api)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def version_reported(self) -> tuple[int, int, int]:
        return self.state.version

    @version_reported.setter
    def version_reported(self, value: tuple[int, int, int]) -> None:
        self.state.version = value

    def set_preview(self, asset_id: str, data: bytes, content_type: str = "image/jpeg") -> None:
        """Serve exactly `data` as `content_type` for the asset's `preview` from now on."""
        self.state.images.set_preview(asset_id, data, content_type)

    # -- traffic ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[Request]:
        """Every request so far: (method, path, query, body)."""
        return self.state.requests

    @property
    def exchanges(self) -> list[Exchange]:
        """Requests with their replies; filled only with `record_bodies=True`."""
        return self.state.exchanges

    @property
    def bytes_sent(self) -> int:
        return self.state.bytes_sent

    @property
    def server_errors(self) -> list[str]:
        """Tracebacks of bugs in the fake itself (each also answered as a 500)."""
        return self.state.server_errors

    @property
    def connections_accepted(self) -> int:
        """TCP connections the server has accepted so far (keep-alive reuses one)."""
        return self.state.connections_accepted

    @property
    def thumbnails_rendered(self) -> int:
        return self.state.images.renders

    def count(self, path_prefix: str = "/api", method: str | None = None) -> int:
        """Requests whose path starts with `path_prefix` (with or without `/api`)."""
        prefix = _api_path(path_prefix) or "/api"
        return sum(
            1
            for r in self.state.requests
            if r.path.startswith(prefix) and (method is None or r.method == method)
        )

    def reset_traffic(self) -> None:
        self.state.requests.clear()
        self.state.exchanges.clear()
        with self.state.guard:
            self.state.bytes_sent = 0

    # -- faults ----------------------------------------------------------------------------

    def _fault(self, kind: str, n: int | None, path: str | None, **extra: Any) -> None:
        with self.state.guard:
            self.state.faults.append(Fault(kind, n, _api_path(path), **extra))

    def fail_next(self, n: int = 1, status: int = 500, path: str | None = None) -> None:
        """The next `n` requests (to `path`, or any) answer `status` with Immich's error body."""
        self._fault("status", n, path, status=status)

    def delay(self, seconds: float, n: int | None = None, path: str | None = None) -> None:
        """Hold replies back `seconds` (the next `n`, or all until `clear_faults`)."""
        self._fault("delay", n, path, seconds=seconds)

    def truncate_next(self, n: int = 1, path: str | None = None) -> None:
        """Send half the body of the next `n` replies, then hang up."""
        self._fault("truncate", n, path)

    def garbage_next(self, n: int = 1, path: str | None = None) -> None:
        """Answer the next `n` requests 200 with a body that is not JSON."""
        self._fault("garbage", n, path)

    def no_length_next(self, n: int = 1, path: str | None = None) -> None:
        """Send the next `n` replies without Content-Length (ended by closing the connection)."""
        self._fault("no_length", n, path)

    def hang_up_next(self, n: int = 1, path: str | None = None) -> None:
        """Read the next `n` requests and close their connection without an answer: a server
        closing an idle connection just as a request arrives on it."""
        self._fault("hang_up", n, path)

    def hang_up(self) -> None:
        """Close every open client connection, as a server does to idle ones after its
        keep-alive timeout; the clients see it only when they next send."""
        with self.state.guard:
            open_now = list(self.state.open_connections)
        for sock in open_now:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def clear_faults(self) -> None:
        with self.state.guard:
            self.state.faults.clear()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a seeded fake Immich until interrupted; prints its URL and key as JSON."""
    parser = argparse.ArgumentParser(description="A fake Immich 3 server with seeded photos.")
    parser.add_argument("--port", type=int, default=2283)
    parser.add_argument("--favorites", type=int, default=50)
    parser.add_argument("--key", default=None, help="API key to accept (default: random)")
    args = parser.parse_args(argv)
    fake = FakeImmich(port=args.port, api_key=args.key)
    fake.add_favorites(args.favorites)
    with fake:
        print(json.dumps({"url": fake.url, "api_key": fake.api_key}), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            fake.state.stopping.wait()


if __name__ == "__main__":
    main()

"""A small HTTP server that serves pictures the way the renderer does, for simulator runs and
tests without the renderer. Does network I/O.

`GET /pictures/<picture id>.bmp` with `Authorization: Bearer <secret>`: 200 with
Content-Length, 401 without the secret, 404 for an unknown picture. `truncate` (bytes) cuts the
body short after sending the full Content-Length, like a connection dropped mid-download.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class PictureServer:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.pictures: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.truncate: int | None = None
        self.status: int | None = None  # answer every request with this status
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/pictures/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests.append(self.path)
                name = self.path.rsplit("/", 1)[-1].removesuffix(".bmp")
                if self.headers.get("Authorization") != "Bearer " + outer.secret:
                    return self._send(401, b"unauthorized")
                body = outer.pictures.get(name)
                if outer.status is not None or body is None:
                    return self._send(outer.status or 404, b"not found")
                self._send(200, body, outer.truncate)

            def _send(self, status: int, body: bytes, cut: int | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "image/bmp")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body if cut is None else body[:cut])
                if cut is not None:
                    self.close_connection = True

        return Handler

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

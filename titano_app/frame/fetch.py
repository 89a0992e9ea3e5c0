"""Picture downloads over HTTP (adafruit_requests), streamed to the card. Does network and file I/O.

A picture is read in CHUNK-byte pieces into one buffer, allocated once at start, and written
to its temp file; after each piece `between()` runs (feed the watchdog, service MQTT), so a
300 KB download never starves the rest of the frame and allocates nothing that grows with it.
A dropped connection just ends the stream: the caller compares the bytes with Content-Length
(`store.commit`) before anything replaces a picture. Errors become FetchError `download_failed`;
a MemoryError is not the download's fault and goes up as it is, for the caller to retry.
"""

import adafruit_connection_manager
import adafruit_requests

from .errors import FrameError

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Callable
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

CHUNK = 2048


class FetchError(FrameError):
    def __init__(self, detail: str) -> None:
        super().__init__("download_failed", detail[:160])


class Fetcher:
    """Downloads with the frame's secret as a Bearer token."""

    def __init__(self, pool: object, ssl_context: object, secret: str) -> None:
        self._session = adafruit_requests.Session(pool, ssl_context)
        self._sockets = adafruit_connection_manager.get_connection_manager(pool)  # the session's
        self._headers = {"Authorization": "Bearer " + secret}
        self._buffer = bytearray(CHUNK)
        self.requests = 0

    def download(self, url: str, path: str, between: Callable[[], None]) -> int | None:
        """Stream `url` into the file `path`; returns the Content-Length (None if not sent)."""
        self.requests += 1
        try:
            response = self._session.get(url, headers=self._headers, stream=True, timeout=5)
        except MemoryError:
            raise
        except Exception as e:  # the library raises OSError, RuntimeError and more
            raise FetchError(f"{url}: {e}") from None
        try:
            if response.status_code != 200:
                raise FetchError(f"{url}: HTTP {response.status_code}")
            length = response.headers.get("content-length")
            self._save(response, path, between)
            return int(length) if length else None
        except (FrameError, MemoryError):
            raise
        except Exception as e:
            raise FetchError(f"{url}: {e}") from None
        finally:
            self._release(response)

    def _save(
        self, response: adafruit_requests.Response, path: str, between: Callable[[], None]
    ) -> None:
        # Response._readinto is what the library's own iter_content reads with (pinned 4.1.17),
        # minus the new bytes object it makes of every piece.
        buffer, whole = self._buffer, memoryview(self._buffer)
        with open(path, "wb") as f:
            while True:
                n = response._readinto(buffer)
                if not n:
                    response.close()  # read to its end: the socket is free for the next request
                    return
                f.write(buffer if n == CHUNK else whole[:n])
                between()

    def _release(self, response: adafruit_requests.Response) -> None:
        # Read to its end, the body has freed the socket for the next request already. Else
        # (an error status, a failure mid-stream) close it: `close()` would only free it, and
        # the next request would read what is left of this body as its response.
        sock, response.socket = response.socket, None
        if sock is None:
            return
        try:  # noqa: SIM105 -- the board has no contextlib
            self._sockets.close_socket(sock)
        except Exception:  # a dead socket may fail to close; it is dropped either way
            pass

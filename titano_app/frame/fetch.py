"""Picture downloads over HTTP (adafruit_requests), streamed to the card. Does network and file I/O.

A picture is written in CHUNK-byte pieces to its temp file; after each piece `between()` runs
(feed the watchdog, service MQTT), so a 300 KB download never starves the rest of the frame.
A dropped connection just ends the stream: the caller compares the bytes with Content-Length
(`store.commit`) before anything replaces a picture. Errors become FetchError `download_failed`.
"""

import adafruit_connection_manager
import adafruit_requests

from .errors import FrameError

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Callable
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

CHUNK = 4096


class FetchError(FrameError):
    def __init__(self, detail: str) -> None:
        super().__init__("download_failed", detail[:160])


class Fetcher:
    """Downloads with the frame's secret as a Bearer token."""

    def __init__(self, pool: object, ssl_context: object, secret: str) -> None:
        self._session = adafruit_requests.Session(pool, ssl_context)
        self._sockets = adafruit_connection_manager.get_connection_manager(pool)  # the session's
        self._headers = {"Authorization": "Bearer " + secret}
        self.requests = 0

    def download(self, url: str, path: str, between: Callable[[], None]) -> int | None:
        """Stream `url` into the file `path`; returns the Content-Length (None if not sent)."""
        self.requests += 1
        try:
            response = self._session.get(url, headers=self._headers, stream=True, timeout=5)
        except Exception as e:  # the library raises OSError, RuntimeError and more
            raise FetchError(f"{url}: {e}") from None
        try:
            if response.status_code != 200:
                raise FetchError(f"{url}: HTTP {response.status_code}")
            length = response.headers.get("content-length")
            with open(path, "wb") as f:
                for chunk in response.iter_content(chunk_size=CHUNK):
                    f.write(chunk)
                    del chunk  # else it is still held while the library reads the next one
                    between()
            return int(length) if length else None
        except FrameError:
            raise
        except Exception as e:
            raise FetchError(f"{url}: {e}") from None
        finally:
            self._release(response)

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

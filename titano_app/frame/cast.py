"""Casts: an image the renderer announces on `<base>/<frame>/cast` (protocol §2.4), shown at once
for its seconds; then the slideshow goes on with the picture that was next. Does network and
file I/O (the fetcher, the card's tmp folder) and draws through the device.

The image never enters the store: it is downloaded into the card's tmp folder (emptied at boot),
checked like a picture, and shown from one of two names in turn, since the board's OnDiskBitmap
reads the file on screen for as long as it is shown. An announcement that cannot be read, a
download that fails, a file that cannot be drawn: each is an error event (`cast_failed`) and
changes nothing else. While a cast is shown the slideshow's next picture stays the next one;
whatever draws a picture before the cast's time is up (a touch, a command) ends it.
"""

import json
import os

from . import bmp, files
from .errors import FrameError, out_of_memory

try:  # the board has no collections.abc
    from collections.abc import Callable

    from .fetch import Fetcher
    from .show import Show
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

MAX_SECONDS = 600  # as the renderer bounds them


class CastError(FrameError):
    def __init__(self, detail: str) -> None:
        super().__init__("cast_failed", detail[:160])


def parse(payload: bytes | bytearray | memoryview) -> tuple[str, int, str]:
    """(url, seconds, id) of an announcement; CastError when it is not one."""
    try:
        doc = json.loads(bytes(payload))
    except ValueError:
        raise CastError("announcement is not JSON") from None
    if not isinstance(doc, dict):
        raise CastError("announcement is not a JSON object")
    url, seconds, cast_id = doc.get("url"), doc.get("seconds"), doc.get("id")
    if not isinstance(url, str) or not (url.startswith("http://") or url.startswith("https://")):
        raise CastError("announcement has no http(s) url")
    # type() and not isinstance(): on the board a bool is no int, under CPython it is
    if type(seconds) is not int or not 1 <= seconds <= MAX_SECONDS:
        raise CastError(f"seconds must be 1 to {MAX_SECONDS}")
    return url, seconds, str(cast_id)[:40] if cast_id is not None else ""


class Cast:
    """The cast on screen, if any: `until` (ms) is when it ends, -1 when none is shown."""

    def __init__(self, tmp: str, fetcher: Fetcher, draw: Callable[[str], None]) -> None:
        self._tmp = tmp
        self._fetcher = fetcher
        self._draw = draw
        self._turn = 0  # which of the two names the next cast takes
        self._drawn = -1  # the show's draw count right after the cast was drawn
        self.until = -1
        self.shown = 0

    def start(self, payload: object, now: int, between: Callable[[], None], show: Show) -> str:
        """Download and draw an announced cast; returns the `cast` event to publish.

        Raises FrameError when it cannot be shown; nothing has changed then.
        """
        url, seconds, cast_id = parse(payload)  # type: ignore[arg-type]
        path = self._fetch(url, between)
        try:
            self._draw(path)
        except OSError as e:
            raise CastError(f"cannot draw the cast: {e}") from None
        self._turn ^= 1
        self._drawn = show.shown
        self.until = now + seconds * 1000
        show.due_ms = self.until  # the next picture waits for the cast
        self.shown += 1
        return json.dumps({"event": "cast", "id": cast_id, "seconds": seconds})

    def _fetch(self, url: str, between: Callable[[], None]) -> str:
        part = self._tmp + "/cast.part"
        try:
            length = self._fetcher.download(url, part, between)
            problem = self._check(part, length)
            if problem:
                raise CastError(problem)
            path = self._tmp + "/cast" + str(self._turn) + ".bmp"
            files.rename(part, path)
            return path
        except FrameError as e:
            raise CastError(e.detail) from None
        except MemoryError as e:
            raise out_of_memory("cast", e) from None
        except OSError as e:
            raise CastError(f"cannot store the cast: {e}") from None
        finally:
            files.remove(part)

    def _check(self, path: str, length: int | None) -> str | None:
        with open(path, "rb") as f:
            head = f.read(bmp.HEAD)
        size = os.stat(path)[6]
        if length is not None and size != length:
            return f"got {size} of {length} bytes"
        return bmp.check(head, size)

    def tick(self, now: int, show: Show, resume: bool) -> None:
        """End the cast when its time is up: the slideshow's next picture when `resume` (it is
        due now), else the picture that was on screen again (paused, or the display off)."""
        if self.until < 0 or now < self.until:
            return
        self.until = -1
        if show.shown != self._drawn:  # a picture was drawn over the cast already
            return
        if resume:
            show.due_ms = now
        else:
            try:
                show.redraw()
            except OSError:  # the picture left the card meanwhile: the next one comes in time
                show.due_ms = now

"""Casts: an image the renderer announces on `<base>/<frame>/cast` (protocol §2.4), shown at once
for its seconds; then the slideshow goes on with the picture that was next. Does network and
file I/O (through castfetch, imported at the first cast) and draws through the device.

The image never enters the store: it is downloaded into the card's tmp folder (emptied at boot),
checked like a picture (castfetch), and shown from one of two names in turn, since the board's
OnDiskBitmap reads the file on screen for as long as it is shown. An announcement that cannot be
read, a download that fails, a file that cannot be drawn: each is an error event (`cast_failed`)
and changes nothing else. While a cast is shown the slideshow's next picture stays the next one;
whatever draws a picture before the cast's time is up (a touch, a command) ends it.
"""

import json

from .errors import out_of_memory

try:  # the board has no collections.abc
    from collections.abc import Callable

    from .fetch import Fetcher
    from .show import Show
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass


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
        try:  # at the first cast: until then its code takes no heap
            from . import castfetch
        except MemoryError as e:
            raise out_of_memory("cast", e) from None
        url, seconds, cast_id = castfetch.parse(payload)  # type: ignore[arg-type]
        path = self._tmp + "/cast" + str(self._turn) + ".bmp"
        castfetch.fetch(url, path, self._fetcher, between)
        try:
            self._draw(path)
        except OSError as e:
            raise castfetch.CastError(f"cannot draw the cast: {e}") from None
        self._turn ^= 1
        self._drawn = show.shown
        self.until = now + seconds * 1000
        show.due_ms = self.until  # the next picture waits for the cast
        self.shown += 1
        return json.dumps({"event": "cast", "id": cast_id, "seconds": seconds})

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

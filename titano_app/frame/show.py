"""The slideshow: which picture is on screen, when the next one is due, drawing it, and when
the notice icon goes (`dispatch` shows it, and holds a picture sent before it is on the card).
Does I/O through the store (card listings) and the device (drawing).

Order comes from `playlist.Shuffle` over the card's picture numbers, so every picture is shown
once per cycle whatever the library size; only the current picture's id is kept. The file drawn
is the store's `retired.keep` until another is: the board reads it while it is on screen, so it
is never deleted, even once retired.
"""

from .playlist import Shuffle

try:  # the board has no contextlib, hence no suppress()
    from collections.abc import Callable

    from .device import Device
    from .store import Store
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass


class Show:
    def __init__(
        self, device: Device, store: Store, randbits: Callable[[int], int] | None = None
    ) -> None:
        self._device = device
        self._store = store
        self._shuffle = Shuffle(store.count(), randbits)
        self.picture: str | None = None  # the id on screen
        self.due_ms = 0
        self.shown = 0
        self.wanted: str | None = None  # asked for by `show` before it was on the card
        self.wanted_until = 0
        self.notice_until = -1  # when the notice icon shown goes; -1: none shown

    def resize(self) -> None:
        """The card's pictures changed: tell the shuffle, keeping the picture on screen."""
        current = None if self.picture is None else self._store.index_of(self.picture)
        self._shuffle.resize(self._store.count(), current)
        if current is None:
            self.picture = None

    def step(self, direction: str, now_ms: int, interval_s: int) -> str | None:
        """Show the next (or previous) picture; returns its id, None when nothing was drawn."""
        for _ in range(3):  # a picture deleted under us: try another
            if direction == "previous":
                index = self._shuffle.previous()
                if index is None:
                    return None
            else:
                index = self._shuffle.next()
            if index is None:
                self.due_ms = now_ms + interval_s * 1000
                return None
            entry = self._store.nth(index)
            if entry is not None and self._draw(entry[0], entry[1], now_ms, interval_s):
                return entry[0]
            self._store.rescan()
            self.resize()
        return None

    def show_id(self, picture_id: str, now_ms: int, interval_s: int) -> bool:
        """Show one picture by id; False when it is not on the card."""
        version = self._store.find(picture_id)
        if version is None or not self._draw(picture_id, version, now_ms, interval_s):
            return False
        index = self._store.index_of(picture_id)
        if index is not None:
            self._shuffle.shown(index)
        return True

    def tick(self, now_ms: int) -> None:
        if 0 <= self.notice_until <= now_ms:  # the notice icon's time is up
            self.notice_until = -1
            self._device.notice(None)

    def redraw(self) -> None:
        if self.picture is not None:
            version = self._store.find(self.picture)
            if version is not None:
                self._device.show(self._store.path(self.picture, version))

    def _draw(self, picture_id: str, version: str, now_ms: int, interval_s: int) -> bool:
        try:
            self._device.show(self._store.path(picture_id, version))
        except OSError:
            return False
        self.picture = picture_id
        self._store.retired.keep = f"{picture_id}.{version}.bmp"  # on screen: never deleted
        self.due_ms = now_ms + interval_s * 1000
        self.shown += 1
        return True

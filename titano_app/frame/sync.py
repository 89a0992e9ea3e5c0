"""One sync round: bring the card in line with a manifest summary, page by page. Does I/O
through the store, the MQTT link and the fetcher it is given.

`Round.steps()` is a generator: it yields after every page fetch and every download, so the app
shows slides and answers commands between them. Only pages whose digest differs from the sync
record are fetched; each page is checked (CRC, lines) before anything is changed. Per page,
pictures no longer listed are retired first (store, retired: off the slideshow at once, the file
kept; `removed` counts them), then missing ones are restored from the retired ones (same
version: no download) or downloaded; a replaced version is deleted only once its successor is on
the card. A page is marked in the record only when all of it is on the card. Memory: one page
(the link's page buffer, not copied) and one card leaf listing (see store) at a time; garbage is
collected before each download.

Room for a download is made by deleting retired pictures, oldest first (`Store.ensure_room`).
A full card (nothing retired left) ends the downloads, not the round: every page is still read
and checked, the pictures that did not fit are counted in `pending`, without a tick per
picture, and the round ends `full`, reported once as `sd_full`. A MemoryError while a page is
applied is reported as `out_of_memory`, memory is freed and the page is applied again (it is
still in the buffer) up to TRIES times; the round then goes on with the next page, `failed`.
"""

import gc

from . import manifest as mf
from .errors import FrameError, out_of_memory
from .files import StoreError
from .manifest import ADD, REMOVE, REPLACE
from .summary import Summary

try:  # the board has no contextlib, hence no suppress()
    from collections.abc import Callable, Iterator

    from .fetch import Fetcher
    from .link import Link
    from .store import Store
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass


TRIES = 3  # applying one page, when memory runs out


class Round:
    """A sync round for `summary`. Counters are read by the app for state and events."""

    def __init__(
        self,
        summary: Summary,
        store: Store,
        link: Link,
        fetcher: Fetcher,
        report: Callable[[FrameError], None],
        between: Callable[[], None],
        now_ms: Callable[[], int],
    ) -> None:
        self.summary = summary
        self._store = store
        self._link = link
        self._fetcher = fetcher
        self._report = report
        self._between = between
        self._now = now_ms
        self.added = 0
        self.removed = 0
        self.pending = 0
        self.pages = 0
        self.failed = False  # something is missing that a later round may get
        self.full = False
        self.changed = False  # the card's pictures changed since the app last looked

    def steps(self) -> Iterator[None]:
        for shard in self.summary.shard_names():
            digest = self.summary.digest(shard)
            if self._store.record.get(shard) == digest:
                continue
            payload: memoryview | bytes | None = b""  # drops the last page before the next one
            if digest != mf.EMPTY:
                payload = self._fetch(shard)
                self.pages += 1
                yield
            if payload is None:
                self.failed = True
                continue
            for attempt in range(1, TRIES + 1):
                try:
                    yield from self._apply(payload, shard, digest)
                    break
                except MemoryError as e:
                    gc.collect()
                    self._report(out_of_memory(f"page {shard}, try {attempt} of {TRIES}", e))
                    if attempt == TRIES:
                        self.failed = True
                    yield
        if self.full:
            self._report(StoreError("sd_full", f"{self.pending} listed pictures did not fit"))

    def _apply(self, payload: memoryview | bytes, shard: str, digest: str) -> Iterator[None]:
        """Check the page, then remove and download until the card matches it."""
        if not self._usable(payload, shard, digest):
            self.failed = True
            return
        self._remove(payload, shard)
        if self.changed:  # the app moves the slideshow off a picture just retired, so its
            yield  # room can be had: the picture on screen is never deleted
        complete = True
        for tail in mf.shard_dirs(shard):
            self._between()  # page "all" walks 256 folders, most without a download
            for done in self._add(payload, tail):
                complete = complete and done
                yield
        if complete:
            self._store.record.mark(shard, digest)

    def _fetch(self, shard: str) -> memoryview | None:
        try:
            got = self._link.page(shard, self._now)
            if got is None:  # the summary names it, the broker has not sent it (yet)
                raise mf.ManifestError(f"page {shard} did not arrive in time")
            return got
        except mf.ManifestError as e:  # missing or oversized; LinkError (connection lost) goes up
            self._report(e)
            return None

    def _usable(self, payload: memoryview | bytes, shard: str, digest: str) -> bool:
        try:
            if not mf.page_ok(payload, digest):
                raise mf.ManifestError(f"page {shard}: CRC does not match the summary")
            mf.check_page(payload, shard)
            return True
        except mf.ManifestError as e:
            self._report(e)
            return False

    def _remove(self, payload: memoryview | bytes, shard: str) -> None:
        for tail in mf.shard_dirs(shard):
            self._between()  # the watchdog: page "all" lists 256 folders here
            for action, picture_id, version in mf.diff_page(payload, self._store.held(tail), tail):
                if action == REMOVE and self._store.retire(picture_id, version):
                    self.removed += 1
                    self.changed = True

    def _add(self, payload: memoryview | bytes, tail: str) -> Iterator[bool]:
        """Download what folder `tail` misses; yields after each try (True when it worked).

        Each download starts from a fresh diff of the folder, so no leaf listing (the largest
        thing a sync holds besides the page) is kept while the picture streams in. Once the card
        is full, the rest of the folder is counted, not tried: one yield for all of it.
        """
        after = ""  # ids up to here were tried already (the diff runs in id order)
        while True:
            todo = self._next_missing(payload, tail, after)
            if todo is None:
                return
            if self.full:
                self.pending += self._missing_from(payload, tail, todo[0])
                yield False
                return
            after = todo[0]
            ok = self._download(todo[0], todo[1])
            if not ok:
                self.pending += 1
            yield ok

    def _missing_from(self, payload: memoryview | bytes, tail: str, first: str) -> int:
        """How many pictures of folder `tail` from id `first` on the card lacks."""
        count = 0
        for action, picture_id, _version in mf.diff_page(payload, self._store.held(tail), tail):
            if action == ADD and picture_id >= first:
                count += 1
        return count

    def _next_missing(
        self, payload: memoryview | bytes, tail: str, after: str
    ) -> tuple[str, str] | None:
        """The first picture after `after` the folder lacks; on the way, drop each old version
        whose listed successor is on the card."""
        missing = ""
        for action, picture_id, version in mf.diff_page(payload, self._store.held(tail), tail):
            if action == ADD:
                missing = picture_id
                if picture_id > after:
                    return picture_id, version
            elif action == REPLACE and picture_id != missing:  # REPLACE follows its ADD
                self._store.delete(picture_id, version)
                self.changed = True
        return None

    def _download(self, picture_id: str, version: str) -> bool:
        store = self._store
        if store.restore(picture_id, version):  # retired at this version: no download
            self.added += 1
            self.changed = True
            return True
        gc.collect()  # a response, its socket and the file want blocks the last page fragmented
        try:
            store.ensure_room(self.summary.picture_bytes)
            temp = store.temp_path(picture_id, version)
            url = self.summary.picture_url(picture_id)
            length = self._fetcher.download(url, temp, self._between)
            store.commit(picture_id, version, length)
        except FrameError as e:
            store.discard(picture_id, version)
            if isinstance(e, StoreError) and e.code == "sd_full":
                self.full = True  # reported once, with the count, when the round ends
            else:
                self._report(e)
                self.failed = True
            return False
        except MemoryError:
            store.discard(picture_id, version)
            raise
        self.added += 1
        self.changed = True
        return True

"""One sync round: bring the card in line with a manifest summary, page by page. Does I/O
through the store, the MQTT link and the fetcher it is given.

`Round.steps()` is a generator: it yields after every page fetch and every download, so the app
shows slides and answers commands between them. Only pages whose digest differs from the sync
record are fetched; each page is checked (CRC, lines) before anything is deleted. Per page,
pictures no longer listed are deleted first (that frees room), then missing ones are downloaded;
a replaced version is deleted only once its successor is on the card. A page is marked in the
record only when all of it is on the card. Memory: one page (as received, not copied) and one
card leaf listing (see store) at a time.
"""

from . import manifest as mf
from .errors import FrameError
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
        self.failed = False
        self.full = False
        self.changed = False  # the card's pictures changed since the app last looked

    def steps(self) -> Iterator[None]:
        for shard in self.summary.shard_names():
            digest = self.summary.digest(shard)
            if self._store.record.get(shard) == digest:
                continue
            payload: bytearray | bytes | None = b""  # drops the last page before the next one
            if digest != mf.EMPTY:
                payload = self._fetch(shard)
                self.pages += 1
                yield
            if payload is None or not self._usable(payload, shard, digest):
                self.failed = True
                continue
            self._remove(payload, shard)
            complete = True
            for tail in mf.shard_dirs(shard):
                self._between()  # page "all" walks 256 folders, most without a download
                for done in self._add(payload, tail):
                    complete = complete and done
                    yield
            if complete:
                self._store.record.mark(shard, digest)

    def _fetch(self, shard: str) -> bytearray | bytes | None:
        try:
            got = self._link.page(shard, self._now)
            if got is None:  # the summary names it, the broker has not sent it (yet)
                raise mf.ManifestError(f"page {shard} did not arrive in time")
            return got
        except mf.ManifestError as e:  # missing or oversized; LinkError (connection lost) goes up
            self._report(e)
            return None

    def _usable(self, payload: bytearray | bytes, shard: str, digest: str) -> bool:
        try:
            if not mf.page_ok(payload, digest):
                raise mf.ManifestError(f"page {shard}: CRC does not match the summary")
            mf.check_page(payload, shard)
            return True
        except mf.ManifestError as e:
            self._report(e)
            return False

    def _remove(self, payload: bytearray | bytes, shard: str) -> None:
        for tail in mf.shard_dirs(shard):
            self._between()  # the watchdog: page "all" lists 256 folders here
            for action, picture_id, version in mf.diff_page(payload, self._store.held(tail), tail):
                if action == REMOVE and self._store.delete(picture_id, version):
                    self.removed += 1
                    self.changed = True

    def _add(self, payload: bytearray | bytes, tail: str) -> Iterator[bool]:
        """Download what folder `tail` misses; yields after each try (True when it worked).

        Each download starts from a fresh diff of the folder, so no leaf listing (the largest
        thing a sync holds besides the page) is kept while the picture streams in.
        """
        after = ""  # ids up to here were tried already (the diff runs in id order)
        while True:
            todo = self._next_missing(payload, tail, after)
            if todo is None:
                return
            after = todo[0]
            ok = not self.full and self._download(todo[0], todo[1])
            if not ok:
                self.pending += 1
            yield ok

    def _next_missing(
        self, payload: bytearray | bytes, tail: str, after: str
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
        try:
            store.ensure_room(self.summary.picture_bytes)
            temp = store.temp_path(picture_id, version)
            url = self.summary.picture_url(picture_id)
            length = self._fetcher.download(url, temp, self._between)
            store.commit(picture_id, version, length)
        except FrameError as e:
            store.discard(picture_id, version)
            if isinstance(e, StoreError) and e.code == "sd_full":
                self.full = True
            self._report(e)
            self.failed = True
            return False
        self.added += 1
        self.changed = True
        return True

"""The SD card: where pictures live, how a download becomes one, the sync record.

Does file I/O with only what CircuitPython's `os` has (listdir, stat, statvfs, remove, rename,
mkdir); OSError becomes StoreError. The root is passed in: "/sd" on the board, a temporary folder
under CPython. Card layout::

    <root>/p/<tail>/<lead>/<picture id>.<version>.bmp   a picture; tail: last 2 hex digits of
        the (first) asset id, as the page shards; lead: first hex digit of the picture id
    <root>/p/synced                            sync record: the digest of each page applied
    <root>/tmp/<picture id>.<version>.part     a download in progress (removed at boot)
    <root>/r/<day>/<tail>/<lead>/<file>        a retired picture (see retired)
    <root>/settings.json                       settings (see card)

Leaves keep each `os.listdir` (all the board has: whole listings) small, and leaves 0 .. f
are a folder in id order: docs/architecture.md, "The card". A card of the one-level layout
(<root>/p/<tail>/<file>) is moved into leaves at boot by renaming.

A picture file is always complete: a download goes to its .part file, `commit` checks length and
BMP header, then renames it into place (rename replaces on the board and on POSIX). Pictures are
numbered 0..count-1 in folder order, then picture id order (`nth`, `index_of`).

`record` (a `record.SyncRecord`) says which page digest each shard last applied in full.
A picture no longer listed is retired (see retired); listed again, restored. Making room:
delete retired pictures, oldest first, then report `sd_full`. Never delete a listed picture
for room, nor the picture on screen (`retired.keep`, its file name) at all.
"""

import os

from . import bmp, files
from .files import StoreError
from .names import id_order, is_picture, position, split
from .record import SyncRecord
from .retired import Retired

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Callable, Iterator, Sequence
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

RESERVE = 1 << 20  # left free for the settings file and the sync record
LEADS = "0123456789abcdef"  # the leaves of a folder, in id order
__all__ = ["RESERVE", "Store", "StoreError"]


def _tail(picture_id: str) -> str:
    return picture_id[34:36]


class Store:
    """Pictures and sync record on a card mounted at `root`."""

    def __init__(
        self,
        root: str,
        statvfs: Callable[[str], Sequence[int]] | None = None,
        screen: tuple[int, int] = (480, 320),
        reserve: int = RESERVE,
        feed: Callable[[], None] | None = None,
        unix_time: Callable[[], int | None] | None = None,
        keep_days: int = 30,
    ) -> None:
        self.root = root
        self._feed = feed or (lambda: None)  # the watchdog, between folders of a long walk
        self._pics = root + "/p"
        self._tmp = root + "/tmp"
        self.record = SyncRecord(self._pics + "/synced")
        self._statvfs = statvfs or os.statvfs
        self._screen = screen
        self._reserve = reserve
        self._counts = [0] * 256
        self.retired = Retired(root + "/r", self._pics, keep_days, unix_time)

    def _run(self, what: str, job: Callable[[], bool | None]) -> bool:
        try:
            return bool(job())
        except OSError as e:
            raise StoreError("sd_error", f"{what}: {e}") from None

    # -- boot and counting

    def boot(self) -> int:
        """Create the folders, drop leftovers of interrupted writes, count the pictures."""
        self._run("prepare card", self._prepare)
        return self.rescan()

    def _prepare(self) -> None:
        for path in (self.root, self._pics, self._tmp):
            files.mkdir(path)
        for name in files.listdir(self._tmp):
            files.remove(self._tmp + "/" + name)
        for path in (self.root + "/settings.json.tmp", self.record.path + ".tmp"):
            files.remove(path)
        self.retired.boot()

    def rescan(self) -> int:
        """Count the pictures of every folder again; returns the total."""
        for i in range(256):  # thousands of listings on a big card: longer than the watchdog
            self._feed()
            self._counts[i] = self._recount(f"{i:02x}")
        return self.count()

    def _recount(self, tail: str) -> int:
        return sum(len(self._names(tail, lead)) for lead in self._leaves(tail))

    def _leaves(self, tail: str) -> list[str]:
        """The leaves of folder `tail`, after moving into them any picture the one-level layout
        left in the folder itself (renamed, never deleted)."""
        folder = f"{self._pics}/{tail}"
        names = files.listdir(folder)
        leaves = [n for n in names if len(n) == 1 and n in LEADS]
        self._run("move pictures of " + folder, lambda: self._adopt(folder, names, leaves))
        return leaves

    def _adopt(self, folder: str, names: list[str], leaves: list[str]) -> None:
        for name in names:
            if not is_picture(name):
                continue
            if name[0] not in leaves:
                files.mkdir(folder + "/" + name[0])
                leaves.append(name[0])
            files.rename(folder + "/" + name, f"{folder}/{name[0]}/{name}")

    def count(self) -> int:
        return sum(self._counts)

    def count_per_dir(self) -> list[int]:
        return self._counts

    def _names(self, tail: str, lead: str) -> list[str]:
        """The picture files of one leaf, in id order."""
        names = files.listdir(f"{self._pics}/{tail}/{lead}")
        for other in [n for n in names if not is_picture(n)]:  # rare: no copy of the listing
            names.remove(other)
        id_order(names)
        return names

    def nth(self, index: int) -> tuple[str, str] | None:
        """(picture id, version) of picture number `index`, None when there is none."""
        for folder in range(256):
            if 0 <= index < self._counts[folder]:
                return self._nth_in(folder, index)
            index -= self._counts[folder]
        return None

    def _nth_in(self, folder: int, index: int) -> tuple[str, str] | None:
        tail, seen = f"{folder:02x}", 0
        for lead in LEADS:
            names = self._names(tail, lead)
            if index < seen + len(names):
                return split(names[index - seen])
            seen += len(names)
        self._counts[folder] = seen  # the count was stale: the caller rescans
        return None

    def index_of(self, picture_id: str) -> int | None:
        """The number of a picture on the card (any version), None when it is not there."""
        tail = _tail(picture_id)
        index = sum(self._counts[: int(tail, 16)])
        for lead in LEADS:
            names = self._names(tail, lead)
            if lead == picture_id[0]:
                at = position(names, picture_id)
                return None if at is None else index + at
            index += len(names)
        return None

    def find(self, picture_id: str) -> str | None:
        """The version of `picture_id` on the card, None when it is not there."""
        names = self._names(_tail(picture_id), picture_id[0])
        at = position(names, picture_id)
        return None if at is None else names[at][-12:-4]

    def held(self, tail: str) -> Iterator[tuple[str, str]]:
        """(picture id, version) of the pictures in folder `tail`, sorted by id, for diff_page.

        Lists one leaf at a time: leaves split the folder by the id's first digit, so leaf 0,
        then 1 .. f is id order. Only leaves that exist are listed: a sync of a small library
        (one page, "all") walks all 256 folders, most of them missing or nearly empty.
        """
        leaves = files.listdir(f"{self._pics}/{tail}")
        for lead in LEADS:
            if lead in leaves:
                for name in self._names(tail, lead):
                    yield split(name)

    # -- pictures

    def path(self, picture_id: str, version: str) -> str:
        return f"{self._leaf(picture_id)}/{picture_id}.{version}.bmp"

    def _leaf(self, picture_id: str) -> str:
        return f"{self._pics}/{_tail(picture_id)}/{picture_id[0]}"

    def temp_path(self, picture_id: str, version: str) -> str:
        """Where a download of this picture is written before `commit`."""
        return f"{self._tmp}/{picture_id}.{version}.part"

    def commit(self, picture_id: str, version: str, length: int | None = None) -> str:
        """Move a finished download into place; returns the picture's path.

        Raises StoreError `download_failed` (and removes the temp file) when it is shorter than
        `length` or not a BMP the screen can show; nothing on the card changes then.
        """
        temp = self.temp_path(picture_id, version)
        try:
            size = os.stat(temp)[6]
            with open(temp, "rb") as f:
                head = f.read(bmp.HEAD)
        except OSError as e:
            raise StoreError("download_failed", f"{picture_id}: {e}") from None
        problem = bmp.check(head, size, self._screen[0], self._screen[1])
        if length is not None and size != length:
            problem = f"got {size} of {length} bytes"
        if problem:
            files.remove(temp)
            raise StoreError("download_failed", f"{picture_id}: {problem}")
        dest = self.path(picture_id, version)
        self._run("commit " + picture_id, lambda: self._move(temp, dest, picture_id))
        return dest

    def _move(self, temp: str, dest: str, picture_id: str) -> None:
        files.mkdir(self._pics + "/" + _tail(picture_id))
        files.mkdir(self._leaf(picture_id))
        new = not files.exists(dest)
        files.rename(temp, dest)
        self._counts[int(_tail(picture_id), 16)] += new

    def discard(self, picture_id: str, version: str) -> None:
        """Drop an unfinished download."""
        files.remove(self.temp_path(picture_id, version))

    def delete(self, picture_id: str, version: str) -> bool:
        """Remove a picture (retire it when on screen); False when it was not there."""
        if self.retired.keep == f"{picture_id}.{version}.bmp":
            return self.retire(picture_id, version)
        gone = files.remove(self.path(picture_id, version))
        self._counts[int(_tail(picture_id), 16)] -= gone
        return gone

    def retire(self, picture_id: str, version: str) -> bool:
        """Off the slideshow, the file kept; False when it was not there."""
        path = self.path(picture_id, version)
        moved = self._run("retire " + picture_id, lambda: self.retired.put(path))
        self._counts[int(_tail(picture_id), 16)] -= moved
        return moved

    def restore(self, picture_id: str, version: str) -> bool:
        """Back on the slideshow, no download; False when it is not retired."""
        path = self.path(picture_id, version)
        back = self._run("restore " + picture_id, lambda: self.retired.take(path))
        self._counts[int(_tail(picture_id), 16)] += back
        return back

    # -- room

    def free_bytes(self) -> int:
        try:
            stat = self._statvfs(self.root)
        except OSError as e:
            raise StoreError("sd_error", f"statvfs: {e}") from None
        return (stat[1] or stat[0]) * stat[4]  # fragment size (or block size) x blocks free

    def free_mb(self) -> int | None:
        try:
            return self.free_bytes() >> 20
        except StoreError:
            return None

    def ensure_room(self, nbytes: int) -> None:
        """Evict retired pictures till `nbytes` fit (and the reserve); else raise `sd_full`."""
        free = self.free_bytes()
        while free < nbytes + self._reserve and self.retired.evict():
            free = self.free_bytes()
        if free < nbytes + self._reserve:
            raise StoreError("sd_full", f"{free >> 20} MB free, a picture needs {nbytes >> 10} KB")

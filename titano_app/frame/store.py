"""The SD card: where pictures live, how a download becomes one, the sync record, settings.

Does file I/O with only what CircuitPython's `os` has (listdir, stat, statvfs, remove, rename,
mkdir); OSError becomes StoreError. The root is passed in: "/sd" on the board, a temporary folder
under CPython. Card layout::

    <root>/p/<tail>/<picture id>.<version>.bmp  tail: last 2 hex digits of the (first) asset id,
                                               256 folders, ~120 files each at 30,000 pictures
    <root>/p/synced                            sync record: the digest of each page applied
    <root>/tmp/<picture id>.<version>.part     a download in progress (removed at boot)
    <root>/settings.json                       `settings` values, replaced via settings.json.tmp

A picture file is always complete: a download goes to its .part file, `commit` checks length and
BMP header, then renames it into place (rename replaces on the board and on POSIX). Pictures are
numbered 0..count-1 in folder order, then picture id order; `nth` and `index_of` map numbers and
pictures with one folder listing, from per-folder counts kept up to date.

`record` (a `record.SyncRecord`) says which page digest each shard last applied in full, so a
sync fetches only the pages whose digest changed.

Making room: delete the pictures no longer listed (REMOVE from `manifest.diff_page`) before
downloading; when `has_room` is still false, stop and report `sd_full`. Never delete a listed
picture to make room.
"""

import json
import os

from . import bmp, files, settings
from .files import StoreError
from .record import SyncRecord

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Callable, Iterator, Sequence
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

RESERVE = 1 << 20  # left free for the settings file and the sync record
__all__ = ["RESERVE", "Store", "StoreError"]


def _picture(name: str) -> bool:
    return (len(name) == 49 or len(name) == 86) and name[-13] == "." and name.endswith(".bmp")


def _id_order(names: list[str]) -> None:
    """Sort file names by picture id, in place and without a key list (a key per name would
    double the listing's memory). Plain sorting is id order except that a pair's file
    "a+b.<v>.bmp" sorts before "a.<v>.bmp" while its id sorts after "a": move such singles up.
    """
    names.sort()
    for j in range(len(names)):
        name = names[j]
        if len(name) != 49:
            continue
        k = j
        while k > 0 and len(names[k - 1]) == 86 and names[k - 1][:36] == name[:36]:
            k -= 1
        if k < j:
            names.insert(k, names.pop(j))


def _split(name: str) -> tuple[str, str]:
    return name[:-13], name[-12:-4]


class Store:
    """Pictures, sync record and settings on a card mounted at `root`."""

    def __init__(
        self,
        root: str,
        statvfs: Callable[[str], Sequence[int]] | None = None,
        screen: tuple[int, int] = (480, 320),
        reserve: int = RESERVE,
    ) -> None:
        self.root = root
        self._pics = root + "/p"
        self._tmp = root + "/tmp"
        self.record = SyncRecord(self._pics + "/synced")
        self._statvfs = statvfs or os.statvfs
        self._screen = screen
        self._reserve = reserve
        self._counts = [0] * 256

    def _run(self, what: str, job: Callable[[], None]) -> None:
        try:
            job()
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

    def rescan(self) -> int:
        """Count the pictures of every folder again; returns the total."""
        for i in range(256):
            self._counts[i] = len(self._names(i))
        return self.count()

    def count(self) -> int:
        return sum(self._counts)

    def count_per_dir(self) -> list[int]:
        return self._counts

    def _names(self, folder: int) -> list[str]:
        names = files.listdir(f"{self._pics}/{folder:02x}")
        for other in [n for n in names if not _picture(n)]:  # rare: no copy of the listing
            names.remove(other)
        _id_order(names)
        return names

    def nth(self, index: int) -> tuple[str, str] | None:
        """(picture id, version) of picture number `index`, None when there is none."""
        for folder in range(256):
            if 0 <= index < self._counts[folder]:
                names = self._names(folder)
                self._counts[folder] = len(names)
                return _split(names[index]) if index < len(names) else None
            index -= self._counts[folder]
        return None

    def index_of(self, picture_id: str) -> int | None:
        """The number of a picture on the card (any version), None when it is not there."""
        folder = int(picture_id[34:36], 16)
        prefix = picture_id + "."
        for i, name in enumerate(self._names(folder)):
            if name.startswith(prefix) and len(name) == len(prefix) + 12:
                return sum(self._counts[:folder]) + i
        return None

    def find(self, picture_id: str) -> str | None:
        """The version of `picture_id` on the card, None when it is not there."""
        prefix = picture_id + "."
        for name in self._names(int(picture_id[34:36], 16)):
            if name.startswith(prefix) and len(name) == len(prefix) + 12:
                return name[-12:-4]
        return None

    def held(self, tail: str) -> Iterator[tuple[str, str]]:
        """(picture id, version) of the pictures in folder `tail`, sorted by id, for diff_page."""
        for name in self._names(int(tail, 16)):
            yield _split(name)

    # -- pictures

    def path(self, picture_id: str, version: str) -> str:
        return f"{self._pics}/{picture_id[34:36]}/{picture_id}.{version}.bmp"

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
        self._run("commit " + picture_id, lambda: self._move(temp, dest))
        return dest

    def _move(self, temp: str, dest: str) -> None:
        folder = dest[len(self._pics) + 1 : len(self._pics) + 3]
        files.mkdir(self._pics + "/" + folder)
        new = not files.exists(dest)
        files.rename(temp, dest)
        self._counts[int(folder, 16)] += new

    def discard(self, picture_id: str, version: str) -> None:
        """Drop an unfinished download."""
        files.remove(self.temp_path(picture_id, version))

    def delete(self, picture_id: str, version: str) -> bool:
        """Remove a picture; False when it was not there (deleting twice is harmless)."""
        gone = files.remove(self.path(picture_id, version))
        self._counts[int(picture_id[34:36], 16)] -= gone
        return gone

    # -- room

    def free_bytes(self) -> int:
        try:
            stat = self._statvfs(self.root)
        except OSError as e:
            raise StoreError("sd_error", f"statvfs: {e}") from None
        return (stat[1] or stat[0]) * stat[4]  # fragment size (or block size) x blocks free

    def has_room(self, nbytes: int) -> bool:
        return self.free_bytes() >= nbytes + self._reserve

    def ensure_room(self, nbytes: int) -> None:
        """Raise StoreError `sd_full` unless a file of `nbytes` fits (with the reserve)."""
        free = self.free_bytes()
        if free < nbytes + self._reserve:
            raise StoreError("sd_full", f"{free >> 20} MB free, a picture needs {nbytes >> 10} KB")

    # -- settings

    def load_settings(self) -> dict[str, object]:
        """The saved settings; defaults for a missing or damaged file or value."""
        try:
            with open(self.root + "/settings.json", "rb") as f:
                doc = json.loads(f.read(1024).decode())
        except (OSError, ValueError):
            doc = None
        return settings.clean(doc)

    def save_settings(self, values: dict[str, object]) -> None:
        data = json.dumps(settings.clean(values)).encode()
        files.write_atomic(self.root + "/settings.json", data)

"""The renderer's disk cache of finished pictures: atomic, LRU-evicted, kept across restarts.

An entry is keyed by (render-profile key, picture id, version, extension) and stored at
`<root>/<profile key>/<last 2 id chars>/<picture id>.<version>.<ext>`, so the key can be read
back from the path after a restart. Writes go to a temporary file in the same folder, are
flushed to disk and renamed into place: a reader sees a whole file or none. Recency is kept in
memory and written to each file's mtime (at most every few minutes per file), which is what a
restart rebuilds the LRU order from. The helpers at the top are pure; `DiskCache` does the I/O.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from common import manifest
from common.config import ImageProfile
from renderer.ids import EXTENSIONS, parse_picture_id

log = logging.getLogger(__name__)

# Bump when a code change alters the pixels of an unchanged profile, so old entries are not served.
RENDER_REVISION = "1"

# A hit rewrites the file's mtime at most this often: recency survives restarts without a
# syscall per request.
TOUCH_INTERVAL = 300.0

_PROFILE_KEY = re.compile(r"[0-9a-f]{12}")


class CacheKey(NamedTuple):
    profile: str
    picture_id: str
    version: str
    ext: str


@functools.lru_cache(maxsize=64)
def profile_key(profile: ImageProfile) -> str:
    """12 hex digits naming a render profile; frames with equal profiles share entries.

    Built from the same fields as the manifest's versions (`common.manifest.profile_key`).
    """
    text = f"{RENDER_REVISION}|{manifest.profile_key(profile)}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def entry_path(key: CacheKey) -> str:
    """Relative path of an entry. Raises ValueError for a key that could escape the cache root."""
    if (
        _PROFILE_KEY.fullmatch(key.profile) is None
        or parse_picture_id(key.picture_id) is None
        or manifest.VERSION_RE.match(key.version) is None
        or key.ext not in EXTENSIONS
    ):
        raise ValueError(f"not a cache key: {key!r}")
    return f"{key.profile}/{key.picture_id[-2:]}/{key.picture_id}.{key.version}.{key.ext}"


def key_from_path(relpath: str) -> CacheKey | None:
    """Inverse of `entry_path`; None for anything else found under the root."""
    parts = relpath.split("/")
    if len(parts) != 3:
        return None
    stem, _, ext = parts[2].rpartition(".")
    picture_id, _, version = stem.rpartition(".")
    key = CacheKey(parts[0], picture_id, version, ext)
    try:
        return key if entry_path(key) == relpath else None
    except ValueError:
        return None


def plan_eviction(
    entries: Iterable[tuple[CacheKey, int]], max_bytes: int, total: int | None = None
) -> list[CacheKey]:
    """Keys to drop, oldest first, so the rest fit in `max_bytes`. `entries` go oldest first.

    `total` (the sum of all sizes) lets the caller stop the walk early instead of listing
    every entry. The newest entry is always kept, even alone over the limit: a cache that
    cannot hold the picture it just rendered would render it again on every request.
    """
    if total is None:
        items = list(entries)
        total = sum(size for _, size in items)
        entries = items
    drop: list[CacheKey] = []
    pending: tuple[CacheKey, int] | None = None
    for item in entries:
        if pending is not None:  # only drop an entry once a newer one is known to exist
            drop.append(pending[0])
            total -= pending[1]
        if total <= max_bytes:
            return drop
        pending = item
    return drop


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so readers see all of it or nothing: temp file, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class DiskCache:
    """The cache on disk plus its in-memory LRU index. Safe to call from several threads."""

    def __init__(self, root: Path, max_bytes: int, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._clock = clock
        self.evictions = 0
        self._lock = threading.Lock()
        # key -> (size, last mtime written); order = least recently used first.
        self._index: OrderedDict[CacheKey, tuple[int, float]] = OrderedDict()
        self._bytes = 0

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._index)

    def load(self) -> None:
        """Rebuild the index from disk, drop leftovers of interrupted writes, enforce the limit."""
        self.root.mkdir(parents=True, exist_ok=True)
        found: list[tuple[float, CacheKey, int]] = []
        for path in self.root.glob("*/*/*"):
            key = key_from_path(path.relative_to(self.root).as_posix())
            try:
                st = path.stat()
                if path.name.startswith(".tmp-") or (key is not None and st.st_size == 0):
                    path.unlink()
                    continue
            except OSError:
                continue
            if key is not None:
                found.append((st.st_mtime, key, st.st_size))
        found.sort()
        with self._lock:
            self._index = OrderedDict((k, (size, mt)) for mt, k, size in found)
            self._bytes = sum(size for _, _, size in found)
        self._evict()

    def path(self, key: CacheKey) -> Path:
        return self.root / entry_path(key)

    def contains(self, key: CacheKey) -> bool:
        """Whether the entry is cached, without marking it used."""
        with self._lock:
            return key in self._index

    def lookup(self, key: CacheKey) -> Path | None:
        """The entry's path when cached (and marks it recently used), else None."""
        with self._lock:
            item = self._index.get(key)
            if item is None:
                return None
            self._index.move_to_end(key)
            now = self._clock()
            touch = now - item[1] > TOUCH_INTERVAL
            if touch:
                self._index[key] = (item[0], now)
        path = self.path(key)
        if touch:
            try:
                os.utime(path, (now, now))
            except OSError:
                self.forget(key)
                return None
        return path

    def forget(self, key: CacheKey) -> None:
        """Drop a key whose file vanished behind the cache's back."""
        with self._lock:
            item = self._index.pop(key, None)
            if item is not None:
                self._bytes -= item[0]

    def put(self, key: CacheKey, data: bytes) -> Path:
        """Store `data` atomically and evict beyond the limit."""
        path = self.path(key)
        write_atomic(path, data)
        return self.adopt(key, len(data))

    def adopt(self, key: CacheKey, size: int) -> Path:
        """Index an entry another process wrote at `path(key)` with `write_atomic`; evict."""
        with self._lock:
            old = self._index.pop(key, None)
            self._bytes += size - (old[0] if old else 0)
            self._index[key] = (size, self._clock())
        self._evict()
        return self.path(key)

    def _oldest_first(self) -> Iterator[tuple[CacheKey, int]]:
        """(key, size) from the least recently used on, only as far as eviction needs."""
        for key, (size, _) in self._index.items():
            yield key, size

    def _evict(self) -> None:
        with self._lock:
            if self._bytes <= self.max_bytes:  # the common case costs no walk of the index
                return
            drop = plan_eviction(self._oldest_first(), self.max_bytes, self._bytes)
            for key in drop:
                self._bytes -= self._index.pop(key)[0]
            self.evictions += len(drop)
        for key in drop:
            try:
                self.path(key).unlink(missing_ok=True)
            except OSError as exc:  # a read-only or foreign-owned file must not fail a request
                log.warning("cannot evict %s from the cache: %s", self.path(key).name, exc.strerror)

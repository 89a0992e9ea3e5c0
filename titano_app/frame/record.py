"""The sync record: which manifest page each shard last applied in full. Does file I/O.

One small file: an 8-byte header naming the manifest width, then 256 slots of 8 bytes, one per
shard (slot 0 for "all"), each a page digest or spaces. A slot is read or written in place, so
memory stays the same whatever the library size, and a torn write only makes that page be
diffed again. A new width clears every slot, so a record never outlives its width.
"""

from .files import StoreError, write_atomic
from .manifest import EMPTY, HEX

_SLOT = 8
_BLANK = b" " * _SLOT
_EMPTY = EMPTY.encode()
_HEX = HEX.encode()


def _width(shard: str) -> int:
    return 0 if shard == "all" else len(shard)


def _offset(shard: str) -> int:
    return _SLOT * (1 + (0 if shard == "all" else int(shard, 16)))


def _header(width: int) -> bytes:
    return b"synced" + str(width).encode() + b"\n"


class SyncRecord:
    """The record file at `path` (a leftover `path`.tmp is the caller's to remove at boot)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _head(self) -> bytes:
        try:
            with open(self.path, "rb") as f:
                return f.read(_SLOT)
        except OSError:
            return b""

    def get(self, shard: str) -> str | None:
        """The digest of the page of `shard` last applied in full, None when unknown."""
        try:
            with open(self.path, "rb") as f:
                if f.read(_SLOT) != _header(_width(shard)):
                    return None
                f.seek(_offset(shard))
                value = f.read(_SLOT)
        except OSError:
            return None
        # blank or damaged (an erased sector reads 0xff, not even UTF-8): unknown, not a crash
        if len(value) != _SLOT or (value != _EMPTY and value.strip(_HEX)):
            return None
        return value.decode()

    def mark(self, shard: str, digest: str) -> None:
        """Record that the page of `shard` with `digest` is fully on the card."""
        data = digest.encode()
        if len(data) != _SLOT:
            raise ValueError("a digest has 8 characters: " + repr(digest))
        if self._head() != _header(_width(shard)):
            self.reset(_width(shard))
        try:
            with open(self.path, "r+b") as f:
                f.seek(_offset(shard))
                f.write(data)
        except OSError as e:
            raise StoreError("sd_error", f"sync record: {e}") from None

    def reset(self, width: int) -> None:
        """Forget every page: the next sync diffs them all again (what a `sync` command wants)."""
        write_atomic(self.path, _header(width), _BLANK, 256)

"""What the bridge keeps of one photo, kept small: a library of 30,000 photos holds 30,000 of
these for as long as it runs. Pure.

An `Asset` reads like a frozen dataclass (equality by value, `replace` for a changed copy) but
packs its content: the checksum and thumbhash live in one string, the yes/no fields in one
shared small int, and the version of one render profile is remembered in the asset itself
(`bridge.frames.Versions`), not in a table of its own. Immich's `updatedAt` is not kept: it
only moves the delta poll's watermark (`bridge.sources.Lister.newest`). About 370 bytes of
objects per photo where the dataclass, its two strings and the version table held 550
(tests/bridge/test_asset.py; the whole bridge's memory: docs/benchmarks.md, "Bridge at scale").
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from typing import Any

_FAVORITE, _TRASHED, _IMAGE, _STACKED, _THUMBHASH = 1, 2, 4, 8, 16
_SHIFT = 5  # the checksum's length, above the flags: it says where the thumbhash starts

_SHARED: dict[int, int] = {}
_SHARED_MAX = 4096


def fresh(text: str) -> str:
    """A copy of `text` in memory of its own. What the bridge keeps of a page of Immich's JSON
    is copied out of it, so that none of the page's memory stays pinned once it is dropped: a
    30,000-photo walk otherwise leaves megabytes of the heap fragmented."""
    return text.encode().decode() if text else text


def share(value: int) -> int:
    """A small int held once: each int parsed or computed past 256 is an object of its own
    (28 bytes), while a library has only a few dozen sizes and flag sets."""
    if len(_SHARED) < _SHARED_MAX:
        return _SHARED.setdefault(value, value)
    return _SHARED.get(value, value)


class Asset:
    """One photo: enough for versions, pairing and filtering. Immutable, compared by value
    (the remembered version is not part of the value)."""

    __slots__ = (
        "_content",
        "_flags",
        "_memo",
        "_memo_key",
        "height",
        "id",
        "owner",
        "path",
        "taken",
        "visibility",
        "width",
    )
    id: str
    width: int
    height: int
    taken: float  # unix time
    visibility: str
    owner: str
    path: str | None  # the file, for a photo from a folder source
    _content: str  # checksum, then thumbhash
    _flags: int
    _memo: int  # the version for `_memo_key`, as an int
    _memo_key: str | None

    def __init__(
        self,
        id: str,
        checksum: str,
        thumbhash: str | None,
        width: int,
        height: int,
        taken: float,
        favorite: bool = False,
        visibility: str = "timeline",
        trashed: bool = False,
        owner: str = "",
        image: bool = True,
        path: str | None = None,
        stacked: bool = False,  # in an Immich stack, not its primary: Immich's timeline hides it
    ) -> None:
        flags = len(checksum) << _SHIFT
        flags |= (favorite and _FAVORITE) | (trashed and _TRASHED) | (image and _IMAGE)
        flags |= (stacked and _STACKED) | (thumbhash is not None and _THUMBHASH)
        put = object.__setattr__
        put(self, "id", id)
        put(self, "_content", checksum + thumbhash if thumbhash else fresh(checksum))
        put(self, "_flags", share(flags))
        for name, value in (("width", width), ("height", height), ("taken", taken),
                            ("visibility", visibility), ("owner", owner), ("path", path),
                            ("_memo", 0), ("_memo_key", None)):  # fmt: skip
            put(self, name, value)

    # -- packed fields -----------------------------------------------------------------------

    @property
    def checksum(self) -> str:
        return self._content[: self._flags >> _SHIFT]

    @property
    def thumbhash(self) -> str | None:
        if not self._flags & _THUMBHASH:
            return None
        return self._content[self._flags >> _SHIFT :]

    @property
    def favorite(self) -> bool:
        return bool(self._flags & _FAVORITE)

    @property
    def trashed(self) -> bool:
        return bool(self._flags & _TRASHED)

    @property
    def image(self) -> bool:
        return bool(self._flags & _IMAGE)

    @property
    def stacked(self) -> bool:
        return bool(self._flags & _STACKED)

    # -- the remembered version ----------------------------------------------------------------

    def memo(self, key: str) -> str | None:
        """The version remembered for profile `key`, if it is the one remembered."""
        return format(self._memo, "08x") if self._memo_key == key else None

    def remember(self, key: str, version: str) -> bool:
        """Remember `version` (8 hex digits) for profile `key`, unless the asset already
        remembers another profile's; whether it did."""
        if self._memo_key is not None and self._memo_key != key:
            return False
        object.__setattr__(self, "_memo", int(version, 16))
        object.__setattr__(self, "_memo_key", key)
        return True

    # -- value semantics -----------------------------------------------------------------------

    def _value(self) -> tuple[Any, ...]:
        return (self.id, self._content, self._flags, self.width, self.height, self.taken,
                self.visibility, self.owner, self.path)  # fmt: skip

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Asset):
            return NotImplemented
        return self is other or self._value() == other._value()

    def __hash__(self) -> int:
        return hash(self._value())

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    def fields(self) -> dict[str, Any]:
        """The constructor's arguments that make this asset."""
        return {
            "id": self.id, "checksum": self.checksum, "thumbhash": self.thumbhash,
            "width": self.width, "height": self.height, "taken": self.taken,
            "favorite": self.favorite, "visibility": self.visibility,
            "trashed": self.trashed, "owner": self.owner, "image": self.image,
            "path": self.path, "stacked": self.stacked,
        }  # fmt: skip

    def replace(self, **changes: Any) -> Asset:
        """A copy with some fields changed (as `dataclasses.replace` does)."""
        return Asset(**{**self.fields(), **changes})

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.fields().items())
        return f"Asset({inner})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.fields(),))


def _rebuild(fields: dict[str, Any]) -> Asset:
    return Asset(**fields)

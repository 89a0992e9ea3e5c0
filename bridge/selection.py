"""What a set of sources shows, kept current change by change, and pages held once. Pure.

`Selection` is the photos one set of sources and exclusions shows, advanced from the ids a
poll touched (`Library.touched`); frames configured alike share one. `PagePool` hands out one
copy of equal pages, so frames that show the same photos the same way hold their pages once.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bridge.asset import Asset
from bridge.sources import Policy
from bridge.sync import Library
from common.config import FrameConfig

if TYPE_CHECKING:
    from bridge.book import Book


@dataclass(frozen=True, slots=True)
class Sources:
    """A frame's sources as member sets of one library: (members, every stack member)."""

    include: tuple[tuple[frozenset[str], bool], ...]
    exclude: tuple[frozenset[str], ...]

    @classmethod
    def of(cls, frame: FrameConfig, lib: Library) -> Sources:
        include = []
        for source in frame.sources:
            key = lib.key(source.kind, source.value)
            if key is not None:
                include.append((lib.members.get(key, frozenset()), source.stacks == "all"))
        exclude = []
        for skip in frame.exclude:
            key = lib.key(skip.kind, skip.value)
            if key is not None:
                exclude.append(lib.members.get(key, frozenset()))
        return cls(tuple(include), tuple(exclude))

    def pick(self, asset_id: str, lib: Library, policy: Policy) -> Asset | None:
        """The photo when the frame shows it; the rule of `bridge.frames.select` for one id."""
        inside = whole = False
        for members, every in self.include:
            if asset_id in members:
                inside = True
                whole = whole or every
        if not inside or any(asset_id in members for members in self.exclude):
            return None
        asset = lib.assets.get(asset_id)
        if asset is None or not policy.allows(asset) or (asset.stacked and not whole):
            return None
        return asset


class PagePool:
    """Equal pages held once: frames that show the same photos alike have the same pages."""

    def __init__(self) -> None:
        self._pages: dict[tuple[str, int], bytes] = {}
        self._limit = 1024

    def share(self, page: bytes, digest: str) -> bytes:
        """`page`, or an equal page already held (the same bytes, one copy in memory)."""
        key = (digest, len(page))
        held = self._pages.get(key)
        if held is not None and held == page:
            return held
        self._pages[key] = page
        if len(self._pages) > self._limit:
            # Forget pages nothing else holds any more: the pool's reference, the loop's and
            # getrefcount's own make three.
            self._pages = {k: p for k, p in self._pages.items() if sys.getrefcount(p) > 3}
            self._limit = max(1024, 2 * len(self._pages))
        return page


POOL = PagePool()


class Selection:
    """The photos one set of sources shows, kept current generation by generation. Frames
    configured with the same sources and exclusions share one: a change is looked at once,
    and the library's photos are held once, however many frames show them."""

    __slots__ = ("books", "generation", "moved", "selected")

    def __init__(self) -> None:
        self.selected: dict[str, Asset] = {}
        self.generation = -1
        self.moved: list[str] | None = None  # ids whose photo changed in `generation`
        # The last book built over this selection, by (versions, pairing): frames whose pages
        # come out the same share it (`bridge.book`).
        self.books: dict[tuple[int, bool], Book] = {}

    def replace(self, selected: dict[str, Asset], generation: int) -> None:
        """The whole selection anew (a full rebuild): what moved is not known."""
        self.selected, self.generation, self.moved = selected, generation, None

    def advance(self, lib: Library, sources: Sources, policy: Policy) -> bool:
        """Bring the selection to the library's generation from the ids it touched; False
        when that cannot be done (and the frame must rebuild)."""
        if self.generation == lib.generation:
            return self.moved is not None
        if self.generation != lib.generation - 1 or lib.touched is None:
            return False
        moved: list[str] = []
        selected = self.selected
        for asset_id in lib.touched:
            now = sources.pick(asset_id, lib, policy)
            if now is selected.get(asset_id):
                continue
            moved.append(asset_id)
            if now is None:
                del selected[asset_id]
            else:
                selected[asset_id] = now
        self.generation, self.moved = lib.generation, moved
        return True

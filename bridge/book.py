"""A frame's last built manifest, kept so that a change patches it instead of rebuilding it. Pure.

A full rebuild (`bridge.frames.FrameState.rebuild`) costs the whole library on every change.
`Book` keeps what the last build produced: the frame's selection (`bridge.selection`), its
portrait pairs, its pages with their sizes at every shard width. `Book.patch` takes the photos
that moved in the selection, redoes the pairing and versions of those photos only, and rewrites
only the pages they live on, with the same functions a full rebuild uses, so the manifest comes
out byte for byte the same.

That holds while the broker holds exactly the last build, which the caller checks: pairing then
starts from the same pairs a full rebuild would read back. A manifest that had to drop pictures
for size is never patched (which pictures fit depends on every page's dates).

Frames that show the same selection with the same versions and the same pages share one book
(`Selection.books`): a change is paired, versioned and paged once for all of them, and each
frame keeps only its own last manifest (its summary names its own URL).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from bridge import pairing
from bridge.asset import Asset
from bridge.selection import POOL, Selection
from common import manifest

WIDTHS = range(manifest.MAX_WIDTH + 1)


@dataclass(frozen=True, slots=True)
class Change:
    """What a patch did to a frame: `pictures` changed, `removed` photos left the frame,
    `pages` were written anew; `before` photos were on the frame, and `gone` are the ones
    that left (what the removal brake judges)."""

    pictures: int
    removed: int
    pages: int = 0
    before: int = 0
    gone: tuple[str, ...] = ()


def _line(picture_id: str) -> int:
    return len(picture_id) + 1 + 8 + 1


def _portrait(asset: Asset) -> bool:
    return pairing.is_portrait(asset.width, asset.height)


def _entries(page: bytes) -> dict[str, str]:
    """A page this module or `manifest.build` wrote, as {picture id: version}."""
    lines = (line.partition(" ") for line in page.decode().split("\n")[:-1])
    return {pid: ver for pid, _, ver in lines}


class Versioning(Protocol):
    """What a patch needs of `bridge.frames.Versions`."""

    def of(self, asset: Asset) -> str: ...


class Book:
    """The last build of the frames that share it: selection, pairs, pages and their sizes."""

    __slots__ = (
        "change",
        "count",
        "digests",
        "generation",
        "lone",
        "pages",
        "pair_of",
        "pairing",
        "photos",
        "selection",
        "sizes",
        "width",
    )

    def __init__(
        self, selection: Selection, found: Iterable[str], built: manifest.Manifest, pair: bool
    ) -> None:
        self.selection = selection
        selected = selection.selected
        self.pairing = pair
        self.pair_of: dict[str, str] = {}  # asset id → its pair's picture id
        self.sizes: list[dict[str, int]] = [{} for _ in WIDTHS]
        self.count = 0  # pictures on the pages (all of them: nothing is dropped)
        for pid in found:
            self._count(pid, 1)
            if pairing.SEPARATOR in pid:
                for asset_id in pairing.assets_of(pid):
                    asset = selected.get(asset_id)  # its string is the library's
                    self.pair_of[asset_id if asset is None else asset.id] = pid
        self.lone: set[str] = set()  # portraits left single (at most one, as pairing leaves)
        if pair:
            pair_of = self.pair_of
            self.lone = {
                a for a, asset in selected.items() if a not in pair_of and _portrait(asset)
            }
        self.pages = dict(built.pages)
        self.digests = dict(built.digests)
        self.width = built.width
        self.photos = len(selected)  # the photos on its pages
        self.generation = selection.generation  # the selection's, the pages are at
        self.change: Change | None = None  # the last patch, for the frames that share the book

    def same(self, built: manifest.Manifest) -> bool:
        """Whether `built`, made at the book's generation, has the book's pages (so the frame
        that made it can share the book)."""
        return (
            self.generation == self.selection.generation
            and self.width == built.width
            and self.digests == built.digests
            and self.pages == built.pages
        )

    def _count(self, picture_id: str, sign: int) -> None:
        size = sign * _line(picture_id)
        self.count += sign
        for width, sizes in zip(WIDTHS, self.sizes, strict=True):
            shard = manifest.shard_of(picture_id, width)
            sizes[shard] = sizes.get(shard, 0) + size

    # -- patching ----------------------------------------------------------------------------

    @property
    def selected(self) -> dict[str, Asset]:
        return self.selection.selected

    def patch(self, versions: Versioning) -> Change | None:
        """Apply what moved in the selection's last generation (the book being at the one
        before). None: the manifest would drop pictures; rebuild it whole."""
        generation = self.selection.generation
        if generation == self.generation and self.change is not None:
            return dataclasses.replace(self.change, pages=0)  # another frame patched it
        if generation != self.generation + 1:
            return None
        change = self._patch(versions)
        # A failed patch leaves the book half written: no frame may use it any more.
        self.generation, self.change = (generation, change) if change else (-2, None)
        return change

    def _patch(self, versions: Versioning) -> Change | None:
        moved = self.selection.moved
        before = self.photos
        if not moved:
            return Change(0, 0, 0, before)
        gone = tuple(asset_id for asset_id in moved if asset_id not in self.selected)
        delta = self._repair(moved, versions) if self.pairing else self._singles(moved, versions)
        pages = self._write(delta)
        if pages is None:
            return None
        self.photos = len(self.selected)
        return Change(len(delta), len(gone), pages, before, gone)

    def _singles(self, moved: list[str], versions: Versioning) -> dict[str, str | None]:
        selected = self.selected
        return {a: versions.of(selected[a]) if a in selected else None for a in moved}

    def _repair(self, moved: list[str], versions: Versioning) -> dict[str, str | None]:
        """New pictures for the moved photos, as `pairing.pair_portraits` would make them from
        the pictures of the last build: pairs of two portraits still shown are kept, the rest
        are paired afresh with the portraits left single."""
        selected, pair_of = self.selected, self.pair_of
        delta: dict[str, str | None] = {}
        loose = set(moved) | self.lone

        def shown(asset_id: str) -> bool:
            asset = selected.get(asset_id)
            return asset is not None and _portrait(asset)

        for asset_id in moved:
            pid = pair_of.get(asset_id)
            if pid is None:
                continue
            first, second = pairing.assets_of(pid)
            if shown(first) and shown(second):
                delta[pid] = self._pair_version(first, second, versions)
                continue
            delta[pid] = None
            del pair_of[first], pair_of[second]
            loose.update((first, second))
        loose = {
            a for a in loose if a not in pair_of
        }  # not `- pair_of.keys()`: that walks them all
        for asset_id in loose:
            delta[asset_id] = None  # its single picture, if any; put back below when shown
        portraits = sorted((a for a in loose if shown(a)), key=lambda a: (selected[a].taken, a))
        for asset_id in loose:
            if asset_id in selected and not shown(asset_id):
                delta[asset_id] = versions.of(selected[asset_id])
        self.lone = set(portraits)
        for first, second in pairing.match(portraits):
            pid = f"{first}{pairing.SEPARATOR}{second}"
            pair_of[first] = pair_of[second] = pid
            delta[pid] = self._pair_version(first, second, versions)
            self.lone -= {first, second}
        for asset_id in self.lone:
            delta[asset_id] = versions.of(selected[asset_id])
        return delta

    def _pair_version(self, first: str, second: str, versions: Versioning) -> str:
        one, two = versions.of(self.selected[first]), versions.of(self.selected[second])
        return manifest.pair_version(one, two)

    def _write(self, delta: Mapping[str, str | None]) -> int | None:
        """Put the new pictures on their pages: how many pages were written; None when one
        would overflow."""
        dirty: dict[str, dict[str, str | None]] = {}
        for pid, ver in delta.items():
            dirty.setdefault(manifest.shard_of(pid, self.width), {})[pid] = ver
        entries: dict[str, dict[str, str]] = {}
        for shard, changes in dirty.items():
            page = self.pages.get(shard)
            lines = _entries(page) if page else {}
            for pid, ver in changes.items():
                known = pid in lines
                if ver is None:
                    if known:
                        del lines[pid]
                        self._count(pid, -1)
                elif not known or lines[pid] != ver:
                    if not known:
                        self._count(pid, 1)
                    lines[pid] = ver
            entries[shard] = lines
        width = self._width()
        if width == manifest.MAX_WIDTH and max(self.sizes[width].values(), default=0) > (
            manifest.PAGE_LIMIT
        ):
            return None
        if width != self.width:
            entries = self._regroup(entries, width)
        for shard, lines in entries.items():
            if lines:
                page = manifest.page_bytes(lines)
                digest = manifest.crc_hex(page)
                self.pages[shard] = POOL.share(page, digest)
                self.digests[shard] = digest
            else:
                self.pages.pop(shard, None)
                self.digests.pop(shard, None)
        return len(entries)

    def _width(self) -> int:
        """`manifest.choose_width` over the kept sizes."""
        for width in range(manifest.MAX_WIDTH):
            if max(self.sizes[width].values(), default=0) <= manifest.PAGE_LIMIT:
                return width
        return manifest.MAX_WIDTH

    def _regroup(self, entries: dict[str, dict[str, str]], width: int) -> dict[str, dict[str, str]]:
        """Every picture on the pages of a new width (the library crossed a page's size)."""
        every: dict[str, str] = {}
        for shard, page in self.pages.items():
            every.update(entries[shard] if shard in entries else _entries(page))
        for lines in entries.values():
            every.update(lines)
        regrouped: dict[str, dict[str, str]] = {shard: {} for shard in self.pages}
        for pid, ver in every.items():
            regrouped.setdefault(manifest.shard_of(pid, width), {})[pid] = ver
        self.width = width
        return regrouped

    def manifest(
        self, last: manifest.Manifest, url: str, fmt: str, generated: int
    ) -> tuple[manifest.Manifest, manifest.PublishPlan]:
        """A frame's patched manifest, and what to publish over its `last` build to get there."""
        pages, count, width = dict(self.pages), self.count, self.width
        # The sources only change with the config, which a restart rebuilds from scratch.
        src = last.sources
        built = manifest.assemble(pages, self.digests, count, width, url, fmt, generated, 0, src)
        return built, manifest.diff_from(last, built)

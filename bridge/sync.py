"""Keeping the bridge's picture of the library current: full walks and delta polls. Does I/O
(through `bridge.sources`); time is passed in.

State is a `Library`: every photo any frame might show, and for each source (favourites, an
album, a person, a tag, memories, a folder) the set of photo ids in it. A poll builds a new
`Library` and only replaces the old one when every request succeeded, so an Immich error or
timeout changes nothing; the caller logs and counts it and tries again next poll.

- Full walk (first poll, then every `full_scan_interval`): every source listed from scratch,
  names resolved again. The only way to notice a permanently deleted photo, or membership
  changes of big person and tag sources, which move no timestamp on the photo.
- Delta poll (every `poll_interval` in between): one search for photos whose row changed since
  the newest `updatedAt` seen (`updatedAfter`, without an `isFavorite` filter, trashed photos
  included) finds new favourites, un-favourites, edits, trash and archive moves. Immich shows
  a partner's photo as no favourite to the key's user, so when the changes hold a photo that
  is not known to be the user's own, the same search with `isFavorite: true` says which of
  them are favourites. Albums are checked with one `GET /albums` and only those whose
  `updatedAt` or `assetCount` moved are re-listed. Tag and person sets that fit in one search
  page (such as an exclude tag like `frame-skip`) are re-listed, one request each; bigger ones
  wait for the full walk. Memories are fetched again when the local date changes. Folders are
  re-scanned.

`updatedAfter` is the newest `updatedAt` seen plus one millisecond, so a poll with nothing new
returns nothing; a change stamped in the very millisecond of the last one seen but committed
after that poll is caught by the next full walk.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

from bridge.asset import Asset
from bridge.folders import folder_assets
from bridge.sources import (
    Lister,
    album_stamps,
    resolve_album,
    resolve_person,
    resolve_tag,
)
from common.config import FrameConfig

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (kind, Immich id, folder path or "")
FAVORITES: Key = ("favorites", "")
MEMORIES: Key = ("memories", "")
NAMED = ("album", "person", "tag")


@dataclass(frozen=True)
class Wanted:
    """What the configured frames need from their sources, merged over all frames."""

    favorites: bool = False
    memories: bool = False
    named: frozenset[tuple[str, str]] = frozenset()  # (kind, name or id as configured)
    folders: frozenset[str] = frozenset()

    @classmethod
    def of(cls, frames: Iterable[FrameConfig]) -> Wanted:
        favorites = memories = False
        named: set[tuple[str, str]] = set()
        folders: set[str] = set()
        for frame in frames:
            for s in frame.sources:
                favorites |= s.kind == "favorites"
                memories |= s.kind == "memories"
                if s.kind in NAMED:
                    named.add((s.kind, str(s.value)))
                elif s.kind == "folder":
                    folders.add(str(s.value))
            named.update((e.kind, e.value) for e in frame.exclude)
        return cls(favorites, memories, frozenset(named), frozenset(folders))

    @property
    def immich(self) -> bool:
        return self.favorites or self.memories or bool(self.named)

    def kinds(self) -> set[str]:
        return {kind for kind, _ in self.named}


@dataclass
class Library:
    """What the bridge knows of the sources. Replaced whole by each successful poll."""

    assets: dict[str, Asset] = field(default_factory=dict)
    members: dict[Key, frozenset[str]] = field(default_factory=dict)
    ids: dict[tuple[str, str], str | None] = field(default_factory=dict)
    stamps: dict[str, tuple[str, int]] = field(default_factory=dict)
    small: frozenset[Key] = frozenset()
    watermark: float = 0.0
    memories_day: date | None = None
    # Yesterday's memories, replaced at local midnight: an expected removal, not a glitch.
    expired: frozenset[str] = frozenset()
    walks: int = 0
    walked_at: datetime | None = None
    generation: int = 0
    # Ids whose record or membership differs from the library this one replaced, so frames
    # patch their manifests instead of rebuilding them; None when that is not known (names
    # moved to other albums, people or tags): then every frame rebuilds.
    touched: set[str] | None = None

    def key(self, kind: str, value: str | bool) -> Key | None:
        """The member-set key of a configured source; None for a name Immich does not know."""
        if kind in ("favorites", "memories"):
            return (kind, "")
        if kind == "folder":
            return ("folder", str(value))
        found = self.ids.get((kind, str(value)))
        return None if found is None else (kind, found)


class Sync:
    """Runs polls against the sources and holds the current `Library`."""

    def __init__(
        self, wanted: Wanted, lister: Lister | None, tz: tzinfo, full_interval: float
    ) -> None:
        self.wanted = wanted
        self.lister = lister
        self.tz = tz
        self.full_interval = full_interval
        self.lib = Library()

    def full_due(self, now: datetime) -> bool:
        walked = self.lib.walked_at
        return walked is None or (now - walked).total_seconds() >= self.full_interval

    def poll(self, now: datetime, full: bool | None = None) -> bool:
        """One poll (a full walk when due or asked for). True when the library changed.

        Raises the source's error (e.g. ImmichError) and leaves the library as it was.
        """
        walk = self.full_due(now) if full is None else full
        lister = self.lister
        if lister is not None:
            lister.known, lister.newest = self.lib.assets, self.lib.watermark
        new = self._walk(now) if walk else self._delta(now)
        if lister is not None:
            lister.known = new.assets  # not the old dict: it would stay held until then
            new.watermark = max(new.watermark, lister.newest)
        # Names count too: a configured album name may move to an album already listed.
        old = self.lib
        if walk:
            new.touched = _differences(old, new)
        elif new.ids != old.ids:
            new.touched = None
        changed = (new.members, new.assets, new.ids) != (old.members, old.assets, old.ids)
        new.generation = self.lib.generation + (1 if changed else 0)
        self.lib = new
        return changed

    # -- full walk -------------------------------------------------------------------------

    def _walk(self, now: datetime) -> Library:
        old = self.lib
        new = Library(walks=old.walks + 1, walked_at=now, watermark=old.watermark)
        lister = self.lister
        if lister is not None and self.wanted.immich:
            self._resolve(new, lister, kinds=set(NAMED))
            if self.wanted.favorites:
                self._put(new, FAVORITES, lister.favorites())
            small = set()
            for key in sorted({(k[0], i) for k, i in new.ids.items() if i is not None}):
                assets, pages = lister.members(*key)
                self._put(new, key, assets)
                if pages <= 1:
                    small.add(key)
            new.small = frozenset(small)
            if self.wanted.memories:
                self._memories(new, lister, now)
        self._folders(new, walk=True)
        return new

    def _resolve(self, new: Library, lister: Lister, kinds: set[str]) -> None:
        """Names → ids for the configured albums, people and tags of the given kinds."""
        wanted = {(k, v) for k, v in self.wanted.named if k in kinds}
        client = lister.client
        if any(k == "album" for k, _ in wanted):
            albums = client.albums()
            new.stamps = album_stamps(albums)
            for key in (k for k in wanted if k[0] == "album"):
                new.ids[key] = resolve_album(albums, key[1])
        for kind, fetch, resolve in (
            ("person", client.people, resolve_person),
            ("tag", client.tags, resolve_tag),
        ):
            if any(k == kind for k, _ in wanted):
                rows = fetch()
                for key in (k for k in wanted if k[0] == kind):
                    new.ids[key] = resolve(rows, key[1])
        for key in sorted(k for k in wanted if new.ids.get(k) is None):
            log.warning("Immich has no %s named %r; it counts as empty", *key)

    def _memories(self, new: Library, lister: Lister, now: datetime) -> None:
        local = now.astimezone(self.tz)
        before = self.lib.members.get(MEMORIES, frozenset())
        self._put(new, MEMORIES, lister.memories(local))
        if local.date() != self.lib.memories_day:
            new.expired = before - new.members[MEMORIES]
        new.memories_day = local.date()

    def _folders(self, new: Library, walk: bool) -> None:
        for path in sorted(self.wanted.folders):
            key: Key = ("folder", path)
            if not os.path.isdir(path) or not os.access(path, os.R_OK | os.X_OK):
                # An unmounted share or a failing disk is not "no pictures": keep what the
                # frames have, as for an Immich error, until the folder can be read again.
                kept = [
                    self.lib.assets[i]
                    for i in self.lib.members.get(key, ())
                    if i in self.lib.assets
                ]
                log.warning("folder source %s is missing or unreadable; keeping its %d pictures",
                            path, len(kept))  # fmt: skip
                self._put(new, key, kept)
                continue
            found = folder_assets(path)
            if not found and walk:  # once per walk, not every poll
                log.warning("folder source %s holds no pictures", path)
            self._put(new, key, found)

    @staticmethod
    def _put(new: Library, key: Key, assets: list[Asset]) -> None:
        touched = new.touched
        held = new.assets
        for a in assets:
            known = held.get(a.id)
            if known is not a and known != a:
                held[a.id] = a
                if touched is not None:
                    touched.add(a.id)
        # The ids of the photos held, so each id is one string whichever search found it.
        # Made from a set, the frozenset is sized for its members: from a generator, it is
        # left at twice that (2 MiB rather than 1 for 30,000 photos).
        members = frozenset({held[a.id].id for a in assets})
        if touched is not None:  # a delta poll: note what moved
            touched.update(new.members.get(key, frozenset()) ^ members)
        new.members[key] = members

    # -- delta poll ------------------------------------------------------------------------

    def _delta(self, now: datetime) -> Library:
        old = self.lib
        new = dataclasses.replace(old, assets=dict(old.assets), members=dict(old.members))
        new.ids = dict(old.ids)
        new.touched = set()
        lister = self.lister
        if lister is not None and self.wanted.immich:
            self._changes(new, lister)
            if "album" in self.wanted.kinds():
                self._albums(new, lister)
            self._small_sets(new, lister)
            if self.wanted.memories and now.astimezone(self.tz).date() != old.memories_day:
                self._memories(new, lister, now)
        self._folders(new, walk=False)
        return new

    def _small_sets(self, new: Library, lister: Lister) -> None:
        """Re-list the people and tags that fit one page; one that outgrew it waits for walks."""
        small = set(new.small)
        for key in sorted(k for k in new.small if k[0] != "album"):
            assets, pages = lister.members(*key)
            self._put(new, key, assets)
            if pages > 1:
                small.discard(key)
        new.small = frozenset(small)

    def _changes(self, new: Library, lister: Lister) -> None:
        """Apply every photo changed since the watermark."""
        after = new.watermark + 0.001
        changed = lister.changed_since(after)
        liked = {a.id for a in changed if a.favorite}
        if self.wanted.favorites and any(not self._mine(a, lister) for a in changed):
            # A partner's photo always reads as no favourite: ask the favourites search.
            liked = lister.favourites_changed_since(after)
        before = new.members.get(FAVORITES, frozenset())
        added: set[str] = set()
        dropped: set[str] = set()
        for a in changed:
            if a.id in new.assets or a.id in liked:
                new.assets[a.id] = a
            if new.touched is not None:
                new.touched.add(a.id)
            (added if a.id in liked else dropped).add(a.id)
        if self.wanted.favorites and (added - before or dropped & before):
            # Only when something moved: copying 30,000 ids costs more than the poll.
            new.members[FAVORITES] = (before | added) - dropped

    @staticmethod
    def _mine(asset: Asset, lister: Lister) -> bool:
        """Whether the asset's favourite flag is the key's user's own (a favourite always is)."""
        return asset.favorite or (lister.policy.me is not None and asset.owner == lister.policy.me)

    def _albums(self, new: Library, lister: Lister) -> None:
        """Re-list the albums whose stamp moved (or whose name now points elsewhere)."""
        albums = lister.client.albums()
        stamps = album_stamps(albums)
        small = set(new.small)
        for key in sorted(k for k in self.wanted.named if k[0] == "album"):
            album_id = resolve_album(albums, key[1])
            before = new.ids.get(key)
            new.ids[key] = album_id
            if album_id is None:
                continue
            fresh = album_id != before or ("album", album_id) not in new.members
            if fresh or stamps.get(album_id) != new.stamps.get(album_id):
                assets, pages = lister.members("album", album_id)
                self._put(new, ("album", album_id), assets)
                small.discard(("album", album_id))
                if pages <= 1:
                    small.add(("album", album_id))
        new.stamps = stamps
        new.small = frozenset(small)


def _differences(old: Library, new: Library) -> set[str] | None:
    """Ids whose record or membership differs between two libraries (after a full walk).

    An unchanged record keeps the object already held, so manifests built from the old
    library and the new one share it rather than hold the library twice."""
    if new.ids != old.ids or old.walks == 0:
        return None  # after the first walk, every frame builds its manifest whole anyway
    touched: set[str] = set()
    for asset_id, asset in new.assets.items():
        known = old.assets.get(asset_id)
        if known is asset:
            continue
        if known is not None and known == asset:
            new.assets[asset_id] = known
        else:
            touched.add(asset_id)
    touched.update(old.assets.keys() - new.assets.keys())
    for key in old.members.keys() | new.members.keys():
        before, after = old.members.get(key, frozenset()), new.members.get(key, frozenset())
        if before is not after and before != after:
            touched.update(before ^ after)
    return touched

"""Where a frame's pictures come from in Immich: searches and listings turned into sets of
`Asset` records (folder sources are `bridge.folders`). Does I/O through `ImmichClient`.

Immich facts this relies on (docs/protocol.md, the Immich notes in docs/architecture.md):
searches always ask for `type: IMAGE` (hidden video halves of live photos stay out) and
`withStacked` (each asset then names its stack's primary: Immich shows only that one); archived
photos are left out by asking for `visibility: timeline` unless `include_archived`; trashed
photos only come back from a search that asks `withDeleted`, which only the delta poll does, so
it can see a photo go to the trash. Album, person and tag membership have no change feed of
their own: those sets are re-listed (see `bridge.sync`).

Names in the config are matched against Immich ids first, then names: an album by
`albumName`, a person by `name`, a tag by its full path (`parent/child`) and then by its own
name. A tag source includes the photos of its child tags (Immich's `tagIds` search does that).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.asset import Asset, fresh, share
from common.immich import ImmichClient

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SHOWN_VISIBILITY = frozenset({"timeline"})
ARCHIVED = "archive"


def parse_time(value: object) -> float | None:
    """Immich's ISO 8601 timestamp (`…Z`) as unix time; None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)  # Python 3.11 reads the trailing Z itself
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _int(value: object) -> int:
    """A dimension or count, held once (`share`); 0 when it is not an int."""
    if not isinstance(value, int) or isinstance(value, bool):
        return 0
    return share(value)


def parse_asset(dto: Mapping[str, Any], known: Mapping[str, Asset] | None = None) -> Asset | None:
    """An AssetResponseDto as an `Asset`; None when it lacks an id or checksum. A photo equal
    to the one `known` holds comes back as that object, and a changed one with its id string:
    the library, every frame's selection and pages then share one string per photo."""
    asset_id, checksum = dto.get("id"), dto.get("checksum")
    if not (isinstance(asset_id, str) and UUID_RE.match(asset_id) and isinstance(checksum, str)):
        return None
    held = known.get(asset_id) if known else None
    thumbhash = dto.get("thumbhash")
    taken = parse_time(dto.get("fileCreatedAt")) or parse_time(dto.get("localDateTime")) or 0.0
    visibility = dto.get("visibility")
    if not isinstance(visibility, str):
        visibility = ARCHIVED if dto.get("isArchived") else "timeline"
    stack = dto.get("stack")
    stacked = isinstance(stack, dict) and stack.get("primaryAssetId") not in (None, asset_id)
    # Owners and visibilities are a handful of values shared by all photos: interned.
    asset = Asset(
        id=fresh(asset_id) if held is None else held.id,
        checksum=checksum,
        thumbhash=thumbhash if isinstance(thumbhash, str) else None,
        width=_int(dto.get("width")),
        height=_int(dto.get("height")),
        taken=taken,
        favorite=dto.get("isFavorite") is True,
        visibility=sys.intern(visibility),
        trashed=dto.get("isTrashed") is True,
        owner=sys.intern(str(dto.get("ownerId") or "")),
        image=dto.get("type", "IMAGE") == "IMAGE",
        stacked=stacked,
    )
    return held if held is not None and held == asset else asset


def parse_assets(
    dtos: Iterable[Mapping[str, Any]], known: Mapping[str, Asset] | None = None
) -> list[Asset]:
    """Every well-formed asset; malformed ones are logged and skipped. With `known`, as
    `parse_asset`: a walk of an unchanged library then keeps no second copy of it, not even
    until the walk ends."""
    found: list[Asset] = []
    skipped = 0
    for dto in dtos:
        asset = parse_asset(dto, known)
        if asset is None:
            skipped += 1
        else:
            found.append(asset)
    if skipped:
        log.warning("skipped %d assets Immich sent without an id or checksum", skipped)
    return found


@dataclass(frozen=True)
class Policy:
    """Which photos may be shown at all (config `bridge.include_*`), and when: not before
    Immich can render them."""

    include_archived: bool = False
    include_partners: bool = True
    me: str | None = None  # the key owner's user id; needed when partners are left out

    def search_filters(self) -> dict[str, Any]:
        """Filters every listing search carries."""
        # `withStacked` makes each asset say which stack it is in and which is its primary.
        filters: dict[str, Any] = {"type": "IMAGE", "withStacked": True}
        if not self.include_archived:
            filters["visibility"] = "timeline"
        return filters

    def allows(self, asset: Asset) -> bool:
        if not asset.image or asset.trashed:
            return False
        if asset.path is None and asset.thumbhash is None:
            # A fresh upload: Immich has no preview to render yet. Its thumbhash appears with
            # the preview and moves its `updatedAt`, so the next poll publishes it, once.
            return False
        if asset.visibility not in SHOWN_VISIBILITY and not (
            self.include_archived and asset.visibility == ARCHIVED
        ):
            return False
        return self.include_partners or self.me is None or asset.owner == self.me


# -- names to ids --------------------------------------------------------------------------


def _pick(value: str, rows: Iterable[Mapping[str, Any]], *name_keys: str) -> str | None:
    listed = [r for r in rows if isinstance(r.get("id"), str)]
    if UUID_RE.match(value.lower()):
        for row in listed:
            if row["id"] == value.lower():
                return str(row["id"])
    for key in name_keys:
        matches = [str(r["id"]) for r in listed if r.get(key) == value]
        if len(matches) > 1:
            log.warning("%d Immich entries are named %r; using the first", len(matches), value)
        if matches:
            return matches[0]
    return None


def resolve_album(albums: Iterable[Mapping[str, Any]], value: str) -> str | None:
    return _pick(value, albums, "albumName")


def resolve_person(people: Iterable[Mapping[str, Any]], value: str) -> str | None:
    return _pick(value, people, "name")


def resolve_tag(tags: Iterable[Mapping[str, Any]], value: str) -> str | None:
    return _pick(value, tags, "value", "name")


def album_stamps(albums: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, int]]:
    """{album id: (updatedAt, assetCount)}: what changes when an album's membership does."""
    return {
        str(a["id"]): (str(a.get("updatedAt")), _int(a.get("assetCount")))
        for a in albums
        if isinstance(a.get("id"), str)
    }


# -- listings ------------------------------------------------------------------------------


def _changed_filters(after: float) -> dict[str, Any]:
    """A search for every photo whose row changed at or after `after`, trashed ones too."""
    stamp = datetime.fromtimestamp(after, UTC).isoformat(timespec="milliseconds")
    since = stamp.replace("+00:00", "Z")
    return {"type": "IMAGE", "updatedAfter": since, "withDeleted": True, "withStacked": True}


class Lister:
    """The searches and listings a sync makes, against one Immich client."""

    def __init__(self, client: ImmichClient, policy: Policy, page_size: int = PAGE_SIZE) -> None:
        self.client = client
        self.policy = policy
        self.page_size = page_size
        # The photos the bridge holds (`bridge.sync` keeps it current): what a search finds
        # unchanged is answered with these objects (`parse_assets`).
        self.known: Mapping[str, Asset] = {}
        # The newest `updatedAt` (unix time) of the photos found since `bridge.sync` last set
        # it: the watermark of the next delta poll. Not kept per photo.
        self.newest = 0.0

    def _noted(self, dtos: Iterable[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        """`dtos`, with the newest `updatedAt` among them noted."""
        newest = self.newest
        try:
            for dto in dtos:
                stamp = parse_time(dto.get("updatedAt"))
                if stamp is not None and stamp > newest:
                    newest = stamp
                yield dto
        finally:
            self.newest = newest

    def _pages(self, filters: Mapping[str, Any]) -> tuple[list[Asset], int]:
        """Every asset a search finds, page after page, and how many pages it took."""
        pages = 0

        def each() -> Iterator[Mapping[str, Any]]:
            # Parsed page by page: a walk of 30,000 photos holds one page of Immich's JSON at
            # a time, not all of it (tens of MiB the process would keep as fragmented heap).
            nonlocal pages
            for batch in self.client.search_pages(dict(filters), self.page_size):
                pages += 1
                yield from batch

        found = parse_assets(self._noted(each()), self.known)
        return found, pages

    def search(self, extra: Mapping[str, Any]) -> tuple[list[Asset], int]:
        """Every asset matching the policy's filters plus `extra`, and the pages it took."""
        return self._pages({**self.policy.search_filters(), **extra})

    def favorites(self) -> list[Asset]:
        return self.search({"isFavorite": True})[0]

    def members(self, kind: str, immich_id: str) -> tuple[list[Asset], int]:
        """The photos of one album, person or tag (with its child tags), and the pages read."""
        key = {"album": "albumIds", "person": "personIds", "tag": "tagIds"}[kind]
        return self.search({key: [immich_id]})

    def changed_since(self, after: float) -> list[Asset]:
        """Every photo whose row changed at or after `after` (unix time), trashed ones too.

        No `isFavorite` filter on purpose: an un-favourite is a change to find, and no
        visibility filter either, so a photo moved to the archive is seen leaving.
        """
        return self._pages(_changed_filters(after))[0]

    def favourites_changed_since(self, after: float) -> set[str]:
        """Ids of the favourites among the photos whose row changed at or after `after`.

        Immich shows a partner's asset with `isFavorite: false` to the asking user, but its
        `isFavorite` filter matches the owner's flag: which search returns a photo is what
        says it is a favourite.
        """
        return {a.id for a in self._pages({**_changed_filters(after), "isFavorite": True})[0]}

    def memories(self, day: datetime) -> list[Asset]:
        """The photos of the on-this-day memories shown on `day`'s date."""
        found: dict[str, Asset] = {}
        for memory in self.client.memories(day):
            dtos = memory.get("assets")
            if isinstance(dtos, list):
                dicts = self._noted(d for d in dtos if isinstance(d, dict))
                found.update((a.id, a) for a in parse_assets(dicts, self.known))
        return list(found.values())

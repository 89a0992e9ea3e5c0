"""Immich's `POST /search/metadata` semantics over the fake library. Pure, no I/O.

What it copies from Immich 3.x: partners' assets are searched with the owner's (`isFavorite`
matches the owner's flag, though the answer shows a partner's asset as no favourite); without a
`visibility` filter archived and hidden assets (the video halves of live photos) come back but
locked ones do not; trashed assets need `withDeleted` (or a `trashed…` bound); every member of
a stack comes back (`withStacked: true` adds each asset's `stack`, `false` drops stacked ones);
`albumIds`, `personIds` and `tagIds` must all match, a tag matching its descendants too; order
is by taken date, newest first unless `order: asc`; `nextPage` is the next page number as a
string.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.kit.fakes.immich_model import Library
from tests.kit.fakes.immich_rows import Asset

DEFAULT_VISIBILITY = frozenset({"timeline", "archive", "hidden"})
DEFAULT_PAGE_SIZE = 250
# Paging keys do not change the result set, so cached orderings ignore them.
_PAGING = ("page", "size")

Predicate = Callable[[Asset], bool]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _attr_is(attr: str, value: Any) -> Predicate:
    return lambda a: getattr(a, attr) == value


def _exif_is(name: str, value: Any) -> Predicate:
    return lambda a: a.exif.get(name) == value


def _at_least(attr: str, bound: datetime) -> Predicate:
    return lambda a: (t := getattr(a, attr)) is not None and t >= bound


def _at_most(attr: str, bound: datetime) -> Predicate:
    return lambda a: (t := getattr(a, attr)) is not None and t <= bound


def _contains(get: Callable[[Asset], Any], needle: Any) -> Predicate:
    text = str(needle).lower()
    return lambda a: text in str(get(a) or "").lower()


def _times(body: dict[str, Any]) -> list[Predicate]:
    """After/before bounds on the asset's timestamps; trashed rows need `withDeleted`
    unless a trash bound asks for them."""
    fields = {"updated": "updated", "taken": "taken", "created": "created", "trashed": "deleted_at"}
    preds: list[Predicate] = []
    for prefix, attr in fields.items():
        if body.get(f"{prefix}After"):
            preds.append(_at_least(attr, parse_time(body[f"{prefix}After"])))
        if body.get(f"{prefix}Before"):
            preds.append(_at_most(attr, parse_time(body[f"{prefix}Before"])))
    trash_bound = body.get("trashedAfter") or body.get("trashedBefore")
    if not (body.get("withDeleted") or trash_bound):
        preds.append(lambda a: a.deleted_at is None)
    return preds


def _flags(body: dict[str, Any]) -> list[Predicate]:
    visibility = body.get("visibility")
    preds: list[Predicate] = [
        _attr_is("visibility", visibility)
        if visibility
        else lambda a: a.visibility in DEFAULT_VISIBILITY
    ]
    for key, attr in (("isFavorite", "favorite"), ("type", "type"), ("isOffline", "offline"),
                      ("id", "id"), ("checksum", "checksum")):  # fmt: skip
        if key in body:
            preds.append(_attr_is(attr, body[key]))
    if body.get("withStacked") is False:  # Immich then leaves out every stacked asset
        preds.append(lambda a: a.stack_id is None)
    if "isMotion" in body:
        motion = bool(body["isMotion"])
        preds.append(lambda a: (a.live_video_id is not None) == motion)
    return preds


def _exif(body: dict[str, Any]) -> list[Predicate]:
    preds = [
        _exif_is(key, body[key])
        for key in ("city", "state", "country", "make", "model", "rating")
        if key in body
    ]
    if "description" in body:
        preds.append(_contains(lambda a: a.exif.get("description"), body["description"]))
    if "originalFileName" in body:
        preds.append(_contains(lambda a: a.file_name, body["originalFileName"]))
    return preds


def _member_of(ids: set[str]) -> Predicate:
    return lambda a: a.id in ids


def _tagged(family: set[str]) -> Predicate:
    return lambda a: not a.tag_ids.isdisjoint(family)


def _relations(lib: Library, body: dict[str, Any]) -> list[Predicate]:
    """Album, person and tag filters: every listed id must match."""
    preds: list[Predicate] = []
    for album_id in body.get("albumIds") or []:
        album = lib.albums.get(album_id)
        preds.append(_member_of(set(album.asset_ids) if album else set()))
    if body.get("isNotInAlbum"):
        in_any = {i for album in lib.albums.values() for i in album.asset_ids}
        preds.append(lambda a: a.id not in in_any)
    wanted = set(body.get("personIds") or [])
    if wanted:
        people: dict[str, set[str]] = {}
        for face in lib.faces.values():
            if face.person_id:
                people.setdefault(face.asset_id, set()).add(face.person_id)
        preds.append(lambda a: wanted <= people.get(a.id, set()))
    for tag_id in body.get("tagIds") or []:
        family = lib.tag_with_descendants(tag_id) if tag_id in lib.tags else set()
        preds.append(_tagged(family))
    return preds


def ordered_matches(lib: Library, body: dict[str, Any]) -> list[Asset]:
    """Every asset the search selects, in Immich's order."""
    owners = lib.visible_owner_ids()
    preds = [*_flags(body), *_times(body), *_exif(body), *_relations(lib, body)]
    found = [a for a in lib.assets.values() if a.owner_id in owners and all(p(a) for p in preds)]
    found.sort(key=lambda a: (a.taken, a.id), reverse=body.get("order", "desc") == "desc")
    return found


class SearchCache:
    """Orderings by filter set, valid until the library changes; paging 30,000 assets stays
    one filter pass instead of one per page. The caller holds the library lock."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, list[Asset]]] = {}

    def page(self, lib: Library, body: dict[str, Any]) -> tuple[list[Asset], str | None]:
        """One page of results and the next page number as Immich sends it (string or None)."""
        key = json.dumps({k: v for k, v in body.items() if k not in _PAGING}, sort_keys=True)
        hit = self._entries.get(key)
        if hit is None or hit[0] != lib.version:
            if len(self._entries) > 32:
                self._entries.clear()
            hit = (lib.version, ordered_matches(lib, body))
            self._entries[key] = hit
        page = int(body.get("page") or 1)
        size = int(body.get("size") or DEFAULT_PAGE_SIZE)
        matches = hit[1]
        items = matches[(page - 1) * size : page * size]
        return items, str(page + 1) if len(matches) > page * size else None

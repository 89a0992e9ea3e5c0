"""The fake Immich's endpoints: what each answers, given an authenticated, validated call. Pure.

Each `Route` names the scope Immich 3.0.3 requires for it (its spec's `x-immich-permission`;
False = any valid key, None = no authentication); the contract test holds the two together.
Unknown or inaccessible ids get Immich's 400 "Not found or no <scope> access".
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from tests.kit.fakes import immich_dto as dto
from tests.kit.fakes.images import render
from tests.kit.fakes.immich_model import Library
from tests.kit.fakes.immich_rows import ApiKey, Asset, Tag, new_id
from tests.kit.fakes.immich_search import SearchCache

VERSION = (3, 0, 3)
THUMB_CACHE_ENTRIES = 256


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(value: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(value, separators=(",", ":")).encode())


def error_reply(status: int, message: str, **extra: Any) -> Reply:
    """Immich 3's error body: the message (and zod issues for validation failures)."""
    return json_reply({"message": message, **extra}, status)


class ImageCache:
    """Rendered thumbnails by (asset, thumbhash, size): only what was fetched costs memory.
    Rendering runs outside the library lock, so parallel fetches render in parallel."""

    def __init__(self, entries: int = THUMB_CACHE_ENTRIES) -> None:
        self._entries: OrderedDict[tuple[str, str, str], tuple[bytes, str]] = OrderedDict()
        self._limit = entries
        self._lock = threading.Lock()
        self._previews: dict[str, tuple[bytes, str]] = {}
        self.renders = 0

    def set_preview(self, asset_id: str, data: bytes, content_type: str) -> None:
        """Answer the asset's `preview` with exactly these bytes and this media type."""
        with self._lock:
            self._previews[asset_id] = (data, content_type)

    def get(self, lib: Library, asset: Asset, size: str, edited: bool) -> tuple[bytes, str]:
        """The rendition; Immich serves the edited one only when asked (`edited=true`)."""
        if size == "preview":
            with self._lock:
                fixed = self._previews.get(asset.id)
            if fixed is not None:
                return fixed
        with lib.lock:
            edited = edited and asset.edits > 0
            key = (asset.id, str(asset.thumbhash) if edited else "unedited", size)
            faces = [
                (f.box[0] / f.image_size[0], f.box[1] / f.image_size[1],
                 f.box[2] / f.image_size[0], f.box[3] / f.image_size[1])
                for f in lib.faces.values() if f.asset_id == asset.id
            ]  # fmt: skip
            if edited:
                seed, (width, height) = asset.seed + 31 * asset.edits, (asset.width, asset.height)
            else:
                seed, (width, height) = asset.seed, asset.unedited_size
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        made = render(seed, width, height, size, faces)
        with self._lock:
            self.renders += 1
            self._entries[key] = made
            if len(self._entries) > self._limit:
                self._entries.popitem(last=False)
        return made


@dataclass
class Call:
    lib: Library
    key: ApiKey | None
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    searches: SearchCache
    images: ImageCache
    version: tuple[int, int, int] = VERSION


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # without /api, as in the spec
    permission: str | bool | None
    handler: Handler
    locked: bool = True  # run holding the library lock


def _flag(query: dict[str, str], name: str) -> bool:
    return query.get(name) == "true"


def _visible_asset(call: Call, asset_id: str) -> Asset | None:
    found = call.lib.assets.get(asset_id)
    return found if found and found.owner_id in call.lib.visible_owner_ids() else None


def ping(call: Call) -> Reply:
    return json_reply({"res": "pong"})


def version(call: Call) -> Reply:
    major, minor, patch = call.version
    return json_reply({"major": major, "minor": minor, "patch": patch, "prerelease": None})


def my_key(call: Call) -> Reply:
    assert call.key is not None
    return json_reply(dto.api_key(call.key))


def my_user(call: Call) -> Reply:
    return json_reply(dto.user_admin(call.lib.owner))


def search(call: Call) -> Reply:
    body = call.body
    if body.get("visibility") == "locked":
        return error_reply(401, "Elevated permission is required")
    items, next_page = call.searches.page(call.lib, body)
    exif, people = bool(body.get("withExif")), bool(body.get("withPeople"))
    stacks = body.get("withStacked") is True
    dtos = [
        dto.asset(call.lib, a, with_exif=exif, with_people=people, with_stack=stacks) for a in items
    ]
    return json_reply({
        "albums": {"total": 0, "count": 0, "items": [], "facets": []},
        "assets": {
            "total": len(dtos), "count": len(dtos), "items": dtos, "facets": [],
            "nextPage": next_page,
        },
    })  # fmt: skip


def get_asset(call: Call) -> Reply:
    found = _visible_asset(call, call.params["id"])
    if found is None:
        return error_reply(400, "Not found or no asset.read access")
    return json_reply(dto.asset(call.lib, found, with_exif=True, with_people=True))


def thumbnail(call: Call) -> Reply:
    with call.lib.lock:
        found = _visible_asset(call, call.params["id"])
    if found is None:
        return error_reply(400, "Not found or no asset.view access")
    if not found.previewed:  # a fresh upload whose thumbnail job has not run yet
        return error_reply(
            404, "Asset media not found", error="Not Found", statusCode=404,
            correlationId=secrets.token_hex(4),
        )  # fmt: skip
    size, edited = call.query.get("size", "thumbnail"), _flag(call.query, "edited")
    data, media = call.images.get(call.lib, found, size, edited)
    headers = {"Cache-Control": "private, max-age=86400, no-transform"}
    return Reply(200, data, media, headers)


def albums(call: Call) -> Reply:
    found = list(call.lib.albums.values())
    if "assetId" in call.query:
        found = [a for a in found if call.query["assetId"] in a.asset_ids]
    elif "name" in call.query:
        found = [a for a in found if a.name == call.query["name"]]
    if "id" in call.query:
        found = [a for a in found if a.id == call.query["id"]]
    return json_reply([dto.album(call.lib, a) for a in found])


def people(call: Call) -> Reply:
    everyone = sorted(
        call.lib.people.values(), key=lambda p: (p.hidden, not p.favorite, p.name == "", p.name)
    )
    shown = everyone if _flag(call.query, "withHidden") else [p for p in everyone if not p.hidden]
    page, size = int(call.query.get("page", 1)), int(call.query.get("size", 500))
    batch = shown[(page - 1) * size : page * size]
    return json_reply({
        "people": [dto.person(p) for p in batch],
        "total": len(everyone),
        "hidden": sum(p.hidden for p in everyone),
        "hasNextPage": len(shown) > page * size,
    })  # fmt: skip


def tags(call: Call) -> Reply:
    found = sorted(call.lib.tags.values(), key=call.lib.tag_value)
    return json_reply([dto.tag(call.lib, t) for t in found])


def memories(call: Call) -> Reply:
    found = list(call.lib.memories.values())
    if "for" in call.query:
        moment = datetime.combine(date.fromisoformat(call.query["for"]), time(0), UTC)
        found = [m for m in found if dto.memory_window(m)[0] <= moment <= dto.memory_window(m)[1]]
    if call.query.get("isSaved") in ("true", "false"):
        found = [m for m in found if m.saved == _flag(call.query, "isSaved")]
    found.sort(key=lambda m: (m.year, m.id), reverse=call.query.get("order", "desc") == "desc")
    if "size" in call.query:
        found = found[: int(call.query["size"])]
    return json_reply([dto.memory(call.lib, m) for m in found])


def faces(call: Call) -> Reply:
    asset_id = call.query["id"]
    if _visible_asset(call, asset_id) is None:
        return error_reply(400, "Not found or no asset.read access")
    found = [f for f in call.lib.faces.values() if f.asset_id == asset_id]
    return json_reply([dto.face(call.lib, f) for f in found])


def _owned(call: Call, ids: list[str]) -> bool:
    """Immich's write access: only the key user's own assets (not a partner's) may change."""
    return all(
        (a := call.lib.assets.get(i)) is not None and a.owner_id == call.lib.owner.id for i in ids
    )


def update_assets(call: Call) -> Reply:
    ids = list(call.body.get("ids", []))
    if not _owned(call, ids):  # the whole call is refused, nothing changes
        return error_reply(400, "Not found or no asset.update access")
    if "isFavorite" in call.body:
        change = call.lib.favorite if call.body["isFavorite"] else call.lib.unfavorite
        for asset_id in ids:  # a row change: `updatedAt` moves, as in Immich
            change(asset_id)
    return Reply(204, b"")


def create_tag(call: Call) -> Reply:
    name = str(call.body["name"])
    if any(t.name == name and t.parent_id is None for t in call.lib.tags.values()):
        return error_reply(400, "A tag with that name already exists")
    tag = Tag(new_id(), name, None, call.lib.now, call.body.get("color"))
    call.lib.tags[tag.id] = tag
    call.lib.version += 1
    return json_reply(dto.tag(call.lib, tag), 201)


def tag_assets(call: Call) -> Reply:
    tag_id = call.params["id"]
    if tag_id not in call.lib.tags:
        return error_reply(400, "Not found or no tag.asset access")
    results: list[dict[str, Any]] = []
    for asset_id in call.body.get("ids", []):
        asset = call.lib.assets.get(asset_id)
        if asset is None or not _owned(call, [asset_id]):
            results.append({"id": asset_id, "success": False, "error": "no_permission"})
        elif tag_id in asset.tag_ids:
            results.append({"id": asset_id, "success": False, "error": "duplicate"})
        else:
            asset.tag_ids.add(tag_id)  # the tag table: the asset's `updatedAt` stays
            call.lib.version += 1
            results.append({"id": asset_id, "success": True})
    return json_reply(results)


ROUTES = (
    Route("GET", "/server/ping", None, ping),
    Route("GET", "/server/version", None, version),
    Route("GET", "/api-keys/me", False, my_key),
    Route("GET", "/users/me", "user.read", my_user),
    Route("POST", "/search/metadata", "asset.read", search),
    Route("GET", "/assets/{id}", "asset.read", get_asset),
    Route("GET", "/assets/{id}/thumbnail", "asset.view", thumbnail, locked=False),
    Route("GET", "/albums", "album.read", albums),
    Route("GET", "/people", "person.read", people),
    Route("GET", "/tags", "tag.read", tags),
    Route("PUT", "/assets", "asset.update", update_assets),
    Route("POST", "/tags", "tag.create", create_tag),
    Route("PUT", "/tags/{id}/assets", "tag.asset", tag_assets),
    Route("GET", "/memories", "memory.read", memories),
    Route("GET", "/faces", "face.read", faces),
)

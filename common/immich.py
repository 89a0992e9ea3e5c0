"""The one Immich client: HTTP calls to an Immich 3.x server. Does network I/O.

Every path is under `/api` and carries the `x-api-key` header. The transport
(`common/immichhttp.py`, standard library only) turns library errors into the project's
`ImmichError` family, which never shows the API key, and counts requests and response body
bytes so metrics and benchmarks can report them. One client per thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

from common.immichhttp import (
    USER_AGENT,
    ImmichAuthError,
    ImmichError,
    ImmichHttp,
    ImmichNotFound,
    ImmichNotReady,
    ImmichResponseError,
    ImmichUnreachable,
)

__all__ = [
    "MAX_PAGE_SIZE",
    "USER_AGENT",
    "ImmichAuthError",
    "ImmichClient",
    "ImmichError",
    "ImmichNotFound",
    "ImmichNotReady",
    "ImmichResponseError",
    "ImmichUnreachable",
]

# Immich refuses search pages above this size.
MAX_PAGE_SIZE = 1000


def _next_page(value: Any) -> int | None:
    """Immich sends the next page number as a string ("2"), or null on the last page."""
    if value is None:
        return None
    if isinstance(value, str) and value.isdecimal():  # int() refuses isdigit's "²"
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ImmichResponseError(f"search answered an unusable nextPage {value!r}")


class ImmichClient(ImmichHttp):
    """A read-only client for the endpoints titanoframe uses (and a frame's like and hide).

    `ImmichClient(url, api_key, timeout=10.0)`; `close()` or use it as a context manager.
    """

    def _get_list(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        data = self._call("GET", path, params=params)
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise ImmichResponseError(f"GET /api{path} answered {type(data).__name__}, not a list")
        return data

    def _get_dict(self, path: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        data = self._call("GET", path, params=params)
        if not isinstance(data, dict):
            raise ImmichResponseError(
                f"GET /api{path} answered {type(data).__name__}, not an object"
            )
        return data

    # -- server and key --------------------------------------------------------------------

    def ping(self) -> bool:
        """True when the server answers its ping; False on any failure (never raises)."""
        try:
            return self._get_dict("/server/ping").get("res") == "pong"
        except ImmichError:
            return False

    def version(self) -> tuple[int, int, int]:
        data = self._get_dict("/server/version")
        try:
            return int(data["major"]), int(data["minor"]), int(data["patch"])
        except (KeyError, TypeError, ValueError):
            raise ImmichResponseError(f"server version has an unexpected shape: {data}") from None

    def permissions(self) -> list[str]:
        """The scopes of this API key (`all` grants every scope)."""
        perms = self._get_dict("/api-keys/me").get("permissions")
        if not isinstance(perms, list):
            raise ImmichResponseError("GET /api/api-keys/me has no permissions list")
        return [str(p) for p in perms]

    def missing_scopes(self, needed: Iterable[str]) -> list[str]:
        """The scopes in `needed` this key lacks, in order, without repeats."""
        granted = set(self.permissions())
        if "all" in granted:
            return []
        return [s for s in dict.fromkeys(needed) if s not in granted]

    def me(self) -> dict[str, Any]:
        """The key's user (scope user.read), to tell own assets from partners'."""
        return self._get_dict("/users/me")

    # -- assets ----------------------------------------------------------------------------

    def search_page(
        self, filters: dict[str, Any], page: int = 1, size: int = MAX_PAGE_SIZE
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page of `POST /search/metadata`: (assets, next page number or None)."""
        data = self._call("POST", "/search/metadata", body={**filters, "page": page, "size": size})
        assets = data.get("assets") if isinstance(data, dict) else None
        items = assets.get("items") if isinstance(assets, dict) else None
        if not isinstance(assets, dict) or not isinstance(items, list):
            raise ImmichResponseError("search answered without assets.items")
        if not all(isinstance(x, dict) for x in items):
            raise ImmichResponseError("search answered assets that are not objects")
        return items, _next_page(assets.get("nextPage"))

    def search_pages(
        self, filters: dict[str, Any], size: int = MAX_PAGE_SIZE
    ) -> Iterator[list[dict[str, Any]]]:
        """Each page of assets matching `filters`, until Immich says there is no next."""
        page: int | None = 1
        while page is not None:
            items, following = self.search_page(filters, page, size)
            yield items
            if following is not None and following <= page:
                raise ImmichResponseError(f"search page {page} points back to page {following}")
            page = following

    def search_assets(
        self, filters: dict[str, Any], size: int = MAX_PAGE_SIZE
    ) -> Iterator[dict[str, Any]]:
        """Every asset matching `filters`, page after page."""
        for items in self.search_pages(filters, size):
            yield from items

    def asset(self, asset_id: str) -> dict[str, Any]:
        """One asset with its exif and people."""
        return self._get_dict(f"/assets/{quote(asset_id, safe='')}")

    def thumbnail(
        self, asset_id: str, size: str = "preview", max_bytes: int = 40 << 20
    ) -> tuple[bytes, str]:
        """The asset's rendered image (`preview`: JPEG, `thumbnail`: WEBP) and its media type.

        Always the edited rendition: Immich keeps crops and rotations apart from the original
        and serves them only when asked, while the asset's `width`/`height` are the edited
        ones. For a photo never edited both renditions are the same bytes.
        """
        path = f"/assets/{quote(asset_id, safe='')}/thumbnail"
        where = f"GET /api{path}"
        resp = self._send("GET", path, params={"size": size, "edited": "true"})
        self._raise_for_status(resp, where)
        ctype = resp.headers.get("Content-Type", "application/octet-stream")
        data = self._read(resp, where, max_bytes)
        return data, ctype.split(";", 1)[0].strip().lower()

    # -- albums, people, tags, memories, faces ---------------------------------------------

    def albums(self) -> list[dict[str, Any]]:
        return self._get_list("/albums")

    def albums_of(self, asset_id: str) -> list[dict[str, Any]]:
        """The albums that hold one asset (`GET /albums?assetId=`)."""
        return self._get_list("/albums", {"assetId": asset_id})

    def people(self) -> list[dict[str, Any]]:
        """All people that are not hidden, walking every page."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            data = self._get_dict("/people", {"page": page, "size": MAX_PAGE_SIZE})
            batch = data.get("people")
            if not isinstance(batch, list):
                raise ImmichResponseError("GET /api/people answered without a people list")
            found.extend(p for p in batch if isinstance(p, dict))
            if not data.get("hasNextPage") or not batch:
                return found
            page += 1

    def tags(self) -> list[dict[str, Any]]:
        return self._get_list("/tags")

    def memories(self, day: datetime) -> list[dict[str, Any]]:
        """The on-this-day memories shown on `day` (its calendar date is what Immich uses)."""
        params = {"for": day.date().isoformat(), "type": "on_this_day"}
        return self._get_list("/memories", params)

    def faces(self, asset_id: str) -> list[dict[str, Any]]:
        return self._get_list("/faces", {"id": asset_id})

    # -- writes (like and hide from a frame) -----------------------------------------------

    def set_favorite(self, asset_ids: list[str], favorite: bool) -> None:
        """`PUT /assets` (scope asset.update). Immich refuses the whole call (400 "Not found
        or no asset.update access") when one asset is not the key user's own."""
        self._write("PUT", "/assets", {"ids": asset_ids, "isFavorite": favorite})

    def create_tag(self, name: str) -> dict[str, Any]:
        """`POST /tags` (scope tag.create): the new tag."""
        data = self._call("POST", "/tags", body={"name": name})
        if not isinstance(data, dict) or not isinstance(data.get("id"), str):
            raise ImmichResponseError("POST /api/tags answered without a tag id")
        return data

    def tag_assets(self, tag_id: str, asset_ids: list[str]) -> list[dict[str, Any]]:
        """`PUT /tags/{id}/assets` (scope tag.asset): one `{id, success, error?}` per asset;
        `error` is `duplicate` (already tagged) or `no_permission` (a partner's photo)."""
        data = self._call("PUT", f"/tags/{quote(tag_id, safe='')}/assets", body={"ids": asset_ids})
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise ImmichResponseError("PUT /api/tags/{id}/assets answered without a result list")
        return data

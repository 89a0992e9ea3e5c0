"""The one Immich client: HTTP calls to an Immich 3.x server. Does network I/O.

Every path is under `/api` and carries the `x-api-key` header. Library errors (requests, JSON)
become the project's `ImmichError` family; no message ever contains the API key. The client
counts requests and response bytes so metrics and benchmarks can report them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests

USER_AGENT = "titanoframe/0.1"
# Immich refuses search pages above this size.
MAX_PAGE_SIZE = 1000
_CHUNK = 64 << 10
# Error bodies are read for their message only; nothing sane is bigger.
_ERROR_BODY_LIMIT = 64 << 10
# A search page of 1000 assets with exif is about 2 MB; far past that is not Immich.
_JSON_LIMIT = 256 << 20
# Immich's answer for an asset whose files (previews) are not there yet.
_NOT_READY = "Asset media not found"


class ImmichError(Exception):
    """Base of every Immich failure; `reason` is one line, safe to log and show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImmichUnreachable(ImmichError):
    """Connection refused, name not resolved, or no answer within the timeout."""


class ImmichAuthError(ImmichError):
    """401 (bad key) or 403 (key lacks a scope); the reason is Immich's own message."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class ImmichResponseError(ImmichError):
    """5xx, garbage or truncated body, unexpected shape, or a body over the size limit."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status


class ImmichNotFound(ImmichError):
    """Unknown id: Immich answers 404, or 400 'Not found or no … access'."""


class ImmichNotReady(ImmichError):
    """The asset exists but its preview does not yet: a fresh upload whose thumbnail job has
    not run (Immich answers 404 'Asset media not found' for seconds, or longer during imports).
    """


def _api_base(url: str) -> str:
    base = url.strip().rstrip("/")
    return base if base.endswith("/api") else base + "/api"


def _message(body: bytes) -> str:
    """Immich's `message` (with its validation issues), or a short excerpt of the body."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, dict) and data.get("message") is not None:
        msg = data["message"]
        text = "; ".join(map(str, msg)) if isinstance(msg, list) else str(msg)
        issues = data.get("errors")
        if isinstance(issues, list) and issues:
            text += ": " + "; ".join(_issue_text(i) for i in issues[:5])
        return text
    return body[:200].decode("utf-8", "replace").strip() or "no message"


def _issue_text(issue: Any) -> str:
    if not isinstance(issue, dict):
        return str(issue)
    where = ".".join(str(p) for p in issue.get("path") or [])
    return f"{where}: {issue.get('message')}" if where else str(issue.get("message"))


def _next_page(value: Any) -> int | None:
    """Immich sends the next page number as a string ("2"), or null on the last page."""
    if value is None:
        return None
    if isinstance(value, str) and value.isdecimal():  # int() refuses isdigit's "²"
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ImmichResponseError(f"search answered an unusable nextPage {value!r}")


class ImmichClient:
    """A read-only client for the endpoints titanoframe uses."""

    def __init__(
        self,
        url: str,
        api_key: str,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.base = _api_base(url)
        self.timeout = timeout
        self._key = api_key
        self._owns_session = session is None
        self._session = session or requests.Session()
        self.requests_made = 0
        self.bytes_received = 0

    def close(self) -> None:
        """Close the connection pool, unless the session was handed in by the caller."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> ImmichClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _send(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> requests.Response:
        """Send one request with the body left unread; library errors become ImmichErrors."""
        headers = {"x-api-key": self._key, "Accept": "application/json", "User-Agent": USER_AGENT}
        where = f"{method} /api{path}"
        self.requests_made += 1
        try:
            return self._session.request(
                method,
                self.base + path,
                params=params,
                json=body,
                headers=headers,
                timeout=self.timeout,
                stream=True,
                allow_redirects=False,
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "failed to connect"
            raise ImmichUnreachable(f"{where} {kind}: {self._scrub(str(exc))}") from None
        except requests.RequestException as exc:
            raise ImmichError(f"{where} could not be sent: {self._scrub(str(exc))}") from None

    def _read(self, resp: requests.Response, where: str, limit: int) -> bytes:
        """The whole body, or an error once it passes `limit` bytes or breaks off."""
        declared = resp.headers.get("Content-Length", "")
        if declared.isdecimal() and int(declared) > limit:
            resp.close()
            raise ImmichResponseError(
                f"{where} answered {declared} bytes, over the {limit}-byte limit", resp.status_code
            )
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in resp.iter_content(_CHUNK):
                total += len(chunk)
                self.bytes_received += len(chunk)
                if total > limit:
                    raise ImmichResponseError(
                        f"{where} answered more than the {limit}-byte limit", resp.status_code
                    )
                chunks.append(chunk)
        except requests.ConnectionError as exc:
            raise ImmichUnreachable(f"{where} broke off: {self._scrub(str(exc))}") from None
        except requests.RequestException as exc:
            msg = f"{where} sent a truncated body: {self._scrub(str(exc))}"
            raise ImmichResponseError(msg, resp.status_code) from None
        finally:
            resp.close()
        return b"".join(chunks)

    def _raise_for_status(self, resp: requests.Response, where: str) -> None:
        status = resp.status_code
        if status < 300:
            return
        try:
            body = self._read(resp, where, _ERROR_BODY_LIMIT)
        except ImmichError:
            body = b""  # the status alone still says what happened
        text = _message(body)
        reason = f"{where} → {status}: {self._scrub(text)}"
        if status in (401, 403):
            raise ImmichAuthError(self._scrub(text), status)
        if status == 404 and text.startswith(_NOT_READY):
            raise ImmichNotReady(reason)
        if status == 404 or (status == 400 and text.startswith("Not found or no")):
            raise ImmichNotFound(reason)
        raise ImmichResponseError(reason, status)

    def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None
    ) -> Any:
        """One JSON request and its decoded answer."""
        where = f"{method} /api{path}"
        resp = self._send(method, path, params=params, body=body)
        self._raise_for_status(resp, where)
        raw = self._read(resp, where, _JSON_LIMIT)
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise ImmichResponseError(f"{where} answered invalid JSON", resp.status_code) from None

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

    def _write(self, method: str, path: str, body: Any) -> None:
        """A request whose answer body does not matter (204, or JSON that is not read)."""
        where = f"{method} /api{path}"
        resp = self._send(method, path, body=body)
        self._raise_for_status(resp, where)
        self._read(resp, where, _ERROR_BODY_LIMIT)

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

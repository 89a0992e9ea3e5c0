"""The fake Immich's library: clock, users, keys and assets, in memory. No I/O.

Rows behave like Immich's tables: an asset's `updatedAt` moves on every change to the asset
row (favourite, archive, trash, edit), but not when an album, tag or face that points at it
changes — those live in their own tables (see `immich_catalog`). A permanent delete removes
the row everywhere. Time comes from `now`, which tests may set; left unset it follows the
wall clock. Server threads read under `lock`; every mutation bumps `version`.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from tests.kit.fakes.immich_rows import (
    EPOCH,
    VIDEO_MIME,
    Album,
    ApiKey,
    Asset,
    Face,
    Memory,
    Person,
    Stack,
    Tag,
    User,
    new_id,
)

Row = TypeVar("Row")


def need(table: Mapping[str, Row], row_id: str, what: str) -> Row:
    """The row, or a KeyError that says which kind of id was unknown."""
    if row_id not in table:
        raise KeyError(f"no {what} {row_id}")
    return table[row_id]


class Library:
    """Everything the fake server answers from; mutate it from tests through these methods."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.version = 0  # bumped on every change; search caches key on it
        self._now: datetime | None = None
        self.owner = User(new_id(), "Admin", "admin@example.com", EPOCH)
        self.users: dict[str, User] = {self.owner.id: self.owner}
        self.partner_ids: list[str] = []
        self.assets: dict[str, Asset] = {}
        self.albums: dict[str, Album] = {}
        self.people: dict[str, Person] = {}
        self.faces: dict[str, Face] = {}
        self.tags: dict[str, Tag] = {}
        self.memories: dict[str, Memory] = {}
        self.stacks: dict[str, Stack] = {}
        self.keys: dict[str, ApiKey] = {}  # by secret

    # -- clock -----------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self._now if self._now is not None else datetime.now(UTC)

    @now.setter
    def now(self, value: datetime | None) -> None:
        self._now = None if value is None else value.astimezone(UTC)

    def advance(self, seconds: float) -> datetime:
        """Freeze the clock `seconds` after its current reading; returns the new time."""
        self.now = self.now + timedelta(seconds=seconds)
        return self.now

    def _touch(self, asset: Asset) -> None:
        asset.updated = self.now
        self.version += 1

    # -- users -----------------------------------------------------------------------------

    def add_partner(self, name: str = "Partner") -> str:
        """A user who shares their timeline with the key's owner; returns the user id."""
        with self.lock:
            user = User(new_id(), name, f"{name.lower().replace(' ', '.')}@example.com", EPOCH)
            self.users[user.id] = user
            self.partner_ids.append(user.id)
            return user.id

    def add_key(
        self, permissions: Iterable[str] = ("all",), name: str = "frame", secret: str | None = None
    ) -> str:
        """A new API key of the owner with these scopes; returns the secret to send."""
        with self.lock:
            secret = secret or secrets.token_urlsafe(24)
            self.keys[secret] = ApiKey(new_id(), name, secret, tuple(permissions), self.now)
            return secret

    def visible_owner_ids(self) -> set[str]:
        """The key's owner and every partner sharing with them: whose assets a search sees."""
        return {self.owner.id, *self.partner_ids}

    def tag_value(self, tag: Tag) -> str:
        """A tag's full path, as Immich shows it: `parent/child`."""
        parent = self.tags.get(tag.parent_id) if tag.parent_id else None
        return f"{self.tag_value(parent)}/{tag.name}" if parent else tag.name

    def tag_with_descendants(self, tag_id: str) -> set[str]:
        found = {tag_id}
        while more := {t.id for t in self.tags.values() if t.parent_id in found} - found:
            found |= more
        return found

    # -- assets ----------------------------------------------------------------------------

    def add_asset(
        self,
        *,
        favorite: bool = False,
        type: str = "IMAGE",
        owner: str | None = None,
        taken: datetime | None = None,
        width: int = 4032,
        height: int = 3024,
        visibility: str = "timeline",
        live: bool = False,
        previewed: bool = True,
        file_name: str | None = None,
        **exif: Any,
    ) -> str:
        """One asset; returns its id. `width`×`height` are upright; `exif` takes city, country,
        state, description, orientation ("6" = shot rotated), time_zone, make, model, rating.
        `live=True` adds the hidden VIDEO half and links it by livePhotoVideoId.
        `previewed=False` is a fresh upload: no thumbhash, and its previews answer 404 until
        `make_previews`."""
        with self.lock:
            asset = self._new_asset(owner, taken, type, width, height, file_name, exif)
            asset.favorite, asset.visibility, asset.previewed = favorite, visibility, previewed
            if live:
                video = self._new_asset(owner, asset.taken, "VIDEO", width, height, None, {})
                video.visibility = "hidden"
                asset.live_video_id = video.id
            self.version += 1
            return asset.id

    def _new_asset(
        self,
        owner: str | None,
        taken: datetime | None,
        kind: str,
        width: int,
        height: int,
        file_name: str | None,
        exif: dict[str, Any],
    ) -> Asset:
        owner_id = owner or self.owner.id
        need(self.users, owner_id, "user")
        now = self.now
        ext, mime = ("MOV", VIDEO_MIME) if kind == "VIDEO" else ("JPG", "image/jpeg")
        name = file_name or f"IMG_{len(self.assets) + 1:05d}.{ext}"
        asset = Asset(
            new_id(),
            owner_id,
            kind,
            (taken or now).astimezone(UTC),
            now,
            now,
            width,
            height,
            name,
            mime,
            exif=exif,
        )
        if kind == "VIDEO":
            asset.duration_ms = 3000
        self.assets[asset.id] = asset
        return asset

    def add_assets(self, n: int, *, start: datetime | None = None, **kwargs: Any) -> list[str]:
        """`n` assets taken a minute apart going back from `start` (default: now)."""
        first = start or self.now
        with self.lock:
            return [self.add_asset(taken=first - timedelta(minutes=i), **kwargs) for i in range(n)]

    def add_favorites(self, n: int, **kwargs: Any) -> list[str]:
        """`n` favourite photos at once (30,000 take about a second)."""
        return self.add_assets(n, favorite=True, **kwargs)

    def asset(self, asset_id: str) -> Asset:
        return need(self.assets, asset_id, "asset")

    def _change(self, asset_id: str, **values: Any) -> None:
        with self.lock:
            asset = need(self.assets, asset_id, "asset")
            for name, value in values.items():
                setattr(asset, name, value)
            self._touch(asset)

    def favorite(self, asset_id: str) -> None:
        self._change(asset_id, favorite=True)

    def unfavorite(self, asset_id: str) -> None:
        self._change(asset_id, favorite=False)

    def archive(self, asset_id: str) -> None:
        self._change(asset_id, visibility="archive")

    def unarchive(self, asset_id: str) -> None:
        self._change(asset_id, visibility="timeline")

    def set_visibility(self, asset_id: str, visibility: str) -> None:
        self._change(asset_id, visibility=visibility)

    def trash(self, asset_id: str) -> None:
        self._change(asset_id, deleted_at=self.now)

    def restore(self, asset_id: str) -> None:
        self._change(asset_id, deleted_at=None)

    def set_offline(self, asset_id: str, offline: bool = True) -> None:
        self._change(asset_id, offline=offline)

    def edit(self, asset_id: str, rotate: int = 0) -> None:
        """An edit in Immich's editor (rotated `rotate` degrees clockwise): previews regenerate,
        so the thumbhash changes, and `width`/`height` become the edited ones. The unedited
        preview stays what it was; only a request with `edited=true` gets the edited one."""
        with self.lock:
            asset = need(self.assets, asset_id, "asset")
            size = (
                (asset.height, asset.width) if rotate % 180 == 90 else (asset.width, asset.height)
            )
            self._change(
                asset_id, edits=asset.edits + 1, rotation=(asset.rotation + rotate) % 360,
                width=size[0], height=size[1],
            )  # fmt: skip

    def replace_file(self, asset_id: str) -> None:
        """The original is replaced: new checksum, new previews."""
        with self.lock:
            self._change(asset_id, revision=need(self.assets, asset_id, "asset").revision + 1)

    def set_exif(self, asset_id: str, **exif: Any) -> None:
        """Exif lives in its own table: the asset's updatedAt does not move."""
        with self.lock:
            need(self.assets, asset_id, "asset").exif.update(exif)
            self.version += 1

    def make_previews(self, asset_id: str) -> None:
        """Immich's thumbnail job for a fresh upload: previews exist, the thumbhash is set."""
        self._change(asset_id, previewed=True)

    def stack(self, *asset_ids: str) -> str:
        """A stack of these assets, the first its primary; returns the stack id. The members'
        rows point at the stack, so their `updatedAt` moves."""
        with self.lock:
            stack = Stack(new_id(), asset_ids[0], list(asset_ids))
            for asset_id in asset_ids:
                need(self.assets, asset_id, "asset")
            self.stacks[stack.id] = stack
            for asset_id in asset_ids:
                self._change(asset_id, stack_id=stack.id)
            return stack.id

    def describe(self, asset_id: str, description: str) -> None:
        """The owner edits the description in Immich: exif changes and so does the asset row."""
        with self.lock:
            need(self.assets, asset_id, "asset").exif["description"] = description
            self._change(asset_id)

    def delete(self, asset_id: str) -> None:
        """Permanent delete: the row and everything pointing at it disappear."""
        with self.lock:
            asset = self.assets.pop(need(self.assets, asset_id, "asset").id)
            if asset.live_video_id:
                self.assets.pop(asset.live_video_id, None)
            for album in self.albums.values():
                if asset_id in album.asset_ids:
                    del album.asset_ids[asset_id]
                    album.updated = self.now
            for face_id in [f.id for f in self.faces.values() if f.asset_id == asset_id]:
                del self.faces[face_id]
            for memory in self.memories.values():
                memory.asset_ids = [a for a in memory.asset_ids if a != asset_id]
            if asset.stack_id in self.stacks:
                self.stacks[asset.stack_id].asset_ids.remove(asset_id)
            self.version += 1

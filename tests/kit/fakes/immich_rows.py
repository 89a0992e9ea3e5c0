"""Rows of the fake Immich's tables: users, assets, albums, people, faces, tags, memories, keys.

Pure values, no I/O. Derived Immich fields (checksum, thumbhash, localDateTime) are computed
from an asset's id and its revision and edit counters, so they change exactly when Immich's do.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
VIDEO_MIME = "video/quicktime"


def new_id() -> str:
    """A v4 UUID, the only kind Immich's id pattern accepts."""
    return str(uuid.uuid4())


@dataclass(slots=True, eq=False)
class User:
    id: str
    name: str
    email: str
    created: datetime


@dataclass(slots=True, eq=False)
class Asset:
    id: str
    owner_id: str
    type: str
    taken: datetime
    created: datetime
    updated: datetime
    width: int
    height: int
    file_name: str
    mime: str
    favorite: bool = False
    visibility: str = "timeline"
    deleted_at: datetime | None = None
    offline: bool = False
    live_video_id: str | None = None
    duration_ms: int | None = None
    edits: int = 0
    rotation: int = 0  # degrees clockwise of the edits; 90 and 270 swap width and height
    previewed: bool = True  # False from an upload until its thumbnail job has run
    stack_id: str | None = None
    revision: int = 0
    exif: dict[str, Any] = field(default_factory=dict)
    tag_ids: set[str] = field(default_factory=set)

    @property
    def seed(self) -> int:
        return int(self.id.replace("-", "")[:12], 16) + 7919 * self.revision

    @property
    def unedited_size(self) -> tuple[int, int]:
        """Upright size of the original, before edits (`width`/`height` are the edited one)."""
        turned = self.rotation % 180 == 90
        return (self.height, self.width) if turned else (self.width, self.height)

    @property
    def checksum(self) -> str:
        """Base64 SHA-1 of the original file: changes only when the file is replaced."""
        digest = hashlib.sha1(f"{self.id}/{self.revision}".encode()).digest()
        return base64.b64encode(digest).decode()

    @property
    def thumbhash(self) -> str | None:
        """Changes whenever the previews are regenerated (an edit, a new file); None until
        the first ones exist."""
        if not self.previewed:
            return None
        raw = hashlib.sha256(f"{self.id}/{self.revision}/{self.edits}".encode()).digest()
        return base64.b64encode(raw[:24]).decode()

    @property
    def local(self) -> datetime:
        """Wall-clock time where the photo was taken (Immich's localDateTime)."""
        zone = self.exif.get("time_zone")
        if not zone:
            return self.taken
        # Immich labels the local wall-clock time as UTC.
        return self.taken.astimezone(ZoneInfo(zone)).replace(tzinfo=UTC)


@dataclass(slots=True, eq=False)
class Stack:
    """Photos Immich shows as one (a burst, RAW + JPEG); its timeline shows only the primary."""

    id: str
    primary_id: str
    asset_ids: list[str]


@dataclass(slots=True, eq=False)
class Album:
    id: str
    name: str
    owner_id: str
    created: datetime
    updated: datetime
    asset_ids: dict[str, None] = field(default_factory=dict)  # ordered set
    description: str = ""


@dataclass(slots=True, eq=False)
class Person:
    id: str
    name: str
    updated: datetime
    hidden: bool = False
    favorite: bool = False
    birth_date: date | None = None


@dataclass(slots=True, eq=False)
class Face:
    id: str
    asset_id: str
    person_id: str | None
    box: tuple[int, int, int, int]
    image_size: tuple[int, int]


@dataclass(slots=True, eq=False)
class Tag:
    id: str
    name: str
    parent_id: str | None
    created: datetime
    color: str | None = None


@dataclass(slots=True, eq=False)
class Memory:
    id: str
    day: date
    year: int
    asset_ids: list[str]
    created: datetime
    saved: bool = False


@dataclass(slots=True, eq=False)
class ApiKey:
    id: str
    name: str
    secret: str
    permissions: tuple[str, ...]
    created: datetime

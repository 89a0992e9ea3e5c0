"""The `<base>/<frame>/picture` payload: what the frame shows now, for Home Assistant. Pure.

`{"id", "url", "taken", "city", "country", "people", "albums", "description"}` (docs/protocol.md
§5). `url` is a signed JPEG URL from the renderer's own signing function, so no frame secret
appears on MQTT; it stays valid for `URL_TTL` and is re-signed when less than `URL_REFRESH`
of that is left. For a pair `a+b`, the first photo gives the date, place and description and
people and albums are those of both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common import manifest
from common.signing import signed_jpeg_url

URL_TTL = 7 * 24 * 3600
URL_REFRESH = 24 * 3600
FIELDS = ("taken", "city", "country", "people", "albums", "description")
# Every titanoframe message stays within a manifest page's size, whatever Immich holds: the
# broker refuses oversized packets (broker_config/mosquitto.conf, max_packet_size).
PAYLOAD_LIMIT = 8192
MAX_NAMES = 40


@dataclass(frozen=True)
class Shown:
    """A picture payload the broker holds: its id and when its URL stops working."""

    id: str
    exp: int | None


def state_picture(payload: bytes) -> str | None:
    """The `picture` of a frame's state JSON when it is a valid picture id, else None."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):  # a frame may send deep nesting
        return None
    pid = doc.get("picture") if isinstance(doc, dict) else None
    return pid if isinstance(pid, str) and manifest.PICTURE_ID_RE.match(pid) else None


def parse_published(payload: bytes) -> Shown | None:
    """The id and URL expiry of a retained picture payload; None when empty or malformed."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting raises the last
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str):
        return None
    url = doc.get("url")
    try:
        exp = parse_qs(urlsplit(url).query).get("exp", [""])[0] if isinstance(url, str) else ""
    except ValueError:  # e.g. an unclosed "[" in the host
        exp = ""
    # isdecimal, not isdigit: int() refuses digits such as "²".
    return Shown(doc["id"], int(exp) if exp.isdecimal() else None)


def needs_publish(shown: Shown | None, picture_id: str, now: float) -> bool:
    """Is the retained payload for another picture, or is its URL about to expire?"""
    if shown is None or shown.id != picture_id:
        return True
    return shown.exp is not None and shown.exp - now < URL_REFRESH


def picture_url(
    public_url: str, key: str | None, frame: str, picture_id: str, now: float, secret: bool
) -> str | None:
    """Signed JPEG URL; unsigned when the frame has no secret; None when it cannot be opened."""
    if key:
        return signed_jpeg_url(public_url, key, frame, picture_id, int(now) + URL_TTL)
    if not secret:
        return f"{public_url.rstrip('/')}/v1/frames/{frame}/pictures/{picture_id}.jpg"
    return None


def _zone(name: object) -> tzinfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def taken_text(moment: str | None, zone: object) -> str | None:
    """Immich's UTC timestamp shown in the photo's own time zone, ISO 8601 with offset."""
    if not moment:
        return None
    try:
        when = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(_zone(zone) or UTC).isoformat(timespec="seconds")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def asset_meta(asset: Mapping[str, Any], albums: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The picture fields of one Immich asset (with exif and people) and its albums."""
    raw = asset.get("exifInfo")
    exif: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    moment = exif.get("dateTimeOriginal") or asset.get("fileCreatedAt")
    people = asset.get("people")
    return {
        "taken": taken_text(moment if isinstance(moment, str) else None, exif.get("timeZone")),
        "city": _text(exif.get("city")),
        "country": _text(exif.get("country")),
        "people": [p["name"] for p in people or () if isinstance(p, dict) and _text(p.get("name"))],
        "albums": [a["albumName"] for a in albums if _text(a.get("albumName"))],
        "description": exif.get("description") if isinstance(exif.get("description"), str) else "",
    }


def empty_meta() -> dict[str, Any]:
    return {"taken": None, "city": None, "country": None, "people": [], "albums": [],
            "description": ""}  # fmt: skip


def payload(picture_id: str, url: str | None, metas: Sequence[Mapping[str, Any]]) -> bytes:
    """The JSON payload; `metas` holds one field dict per photo of the picture."""
    first = metas[0] if metas else empty_meta()
    people = list(dict.fromkeys(p for m in metas for p in m.get("people", ())))
    albums = list(dict.fromkeys(a for m in metas for a in m.get("albums", ())))
    description = str(first.get("description") or "")
    people, albums = people[:MAX_NAMES], albums[:MAX_NAMES]

    def encode() -> bytes:
        doc = {
            "id": picture_id,
            "url": url,
            "taken": first.get("taken"),
            "city": first.get("city"),
            "country": first.get("country"),
            "people": people,
            "albums": albums,
            "description": description,
        }
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()

    data = encode()
    if len(data) > PAYLOAD_LIMIT:
        # A long description is what can overflow; cut it by the bytes it is over, with a mark.
        text = description.encode()
        keep = max(0, len(text) - (len(data) - PAYLOAD_LIMIT) - 8)
        description = text[:keep].decode(errors="ignore") + "…"
        data = encode()
    while len(data) > PAYLOAD_LIMIT and (people or albums):
        if len(people) >= len(albums):
            people = people[:-1]
        else:
            albums = albums[:-1]
        data = encode()
    return data

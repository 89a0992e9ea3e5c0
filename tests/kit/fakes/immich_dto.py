"""The fake library's rows as Immich 3.0.3 response bodies (its *ResponseDto shapes). Pure.

Field sets follow tests/data/immich-openapi-3.0.3.json exactly; the contract test checks every
body the fake serves against it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from tests.kit.fakes.immich_model import Library
from tests.kit.fakes.immich_rows import Album, ApiKey, Asset, Face, Memory, Person, Tag, User

UPLOAD = "/data/library"
EXIF_KEYS = (
    "city", "country", "dateTimeOriginal", "description", "exifImageHeight", "exifImageWidth",
    "exposureTime", "fNumber", "fileSizeInByte", "focalLength", "iso", "latitude", "lensModel",
    "longitude", "make", "model", "modifyDate", "orientation", "projectionType", "rating",
    "state", "timeZone",
)  # fmt: skip
# Our seeding keywords → Immich's exif field names, where they differ.
EXIF_NAMES = {"time_zone": "timeZone", "lens_model": "lensModel", "f_number": "fNumber"}


def iso(value: datetime) -> str:
    """A timestamp as Immich (JavaScript) writes it: UTC, milliseconds, `Z`."""
    return (
        value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    )


def exif(asset: Asset) -> dict[str, Any]:
    out: dict[str, Any] = dict.fromkeys(EXIF_KEYS)
    for key, value in asset.exif.items():
        out[EXIF_NAMES.get(key, key)] = value
    # Sensor dimensions: a photo shot rotated (orientation 5-8) is stored sideways.
    sideways = str(out.get("orientation") or "1") in ("5", "6", "7", "8")
    out["exifImageWidth"] = asset.height if sideways else asset.width
    out["exifImageHeight"] = asset.width if sideways else asset.height
    out["dateTimeOriginal"] = iso(asset.taken)
    out["modifyDate"] = iso(asset.taken)
    out["fileSizeInByte"] = out["fileSizeInByte"] or 2_000_000 + asset.seed % 3_000_000
    return {k: out.get(k) for k in EXIF_KEYS}


def person(p: Person) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "birthDate": p.birth_date.isoformat() if p.birth_date else None,
        "thumbnailPath": f"{UPLOAD}/thumbs/people/{p.id}.jpeg",
        "isHidden": p.hidden,
        "isFavorite": p.favorite,
        "updatedAt": iso(p.updated),
    }


def stack(lib: Library, a: Asset) -> dict[str, Any] | None:
    found = lib.stacks.get(a.stack_id) if a.stack_id else None
    if found is None:
        return None
    count = len(found.asset_ids)
    return {"id": found.id, "primaryAssetId": found.primary_id, "assetCount": count}


def asset(
    lib: Library, a: Asset, *, with_exif: bool, with_people: bool, with_stack: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": a.id,
        "type": a.type,
        "checksum": a.checksum,
        "thumbhash": a.thumbhash,
        "ownerId": a.owner_id,
        "libraryId": None,
        "originalPath": f"{UPLOAD}/upload/{a.owner_id}/{a.id[:2]}/{a.id[2:4]}/{a.file_name}",
        "originalFileName": a.file_name,
        "originalMimeType": a.mime,
        "createdAt": iso(a.created),
        "fileCreatedAt": iso(a.taken),
        "fileModifiedAt": iso(a.taken),
        "localDateTime": iso(a.local),
        "updatedAt": iso(a.updated),
        # Immich answers for the asking user: someone else's favourite is not theirs.
        "isFavorite": a.favorite and a.owner_id == lib.owner.id,
        "isArchived": a.visibility == "archive",
        "isTrashed": a.deleted_at is not None,
        "isOffline": a.offline,
        "isEdited": a.edits > 0,
        "visibility": a.visibility,
        "duration": a.duration_ms,
        "livePhotoVideoId": a.live_video_id,
        "hasMetadata": True,
        "duplicateId": None,
        "resized": True,
        "width": a.width,
        "height": a.height,
    }
    if with_stack:
        out["stack"] = stack(lib, a)
    if with_exif:
        out["exifInfo"] = exif(a)
    if with_people:
        ids = dict.fromkeys(f.person_id for f in lib.faces.values() if f.asset_id == a.id)
        found = [lib.people[i] for i in ids if i is not None and i in lib.people]
        out["people"] = [person(p) for p in found if not p.hidden]
    return out


def user(u: User) -> dict[str, Any]:
    return {
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "avatarColor": "primary",
        "profileImagePath": "",
        "profileChangedAt": iso(u.created),
    }


def user_admin(u: User) -> dict[str, Any]:
    return {
        **user(u),
        "createdAt": iso(u.created),
        "updatedAt": iso(u.created),
        "deletedAt": None,
        "isAdmin": True,
        "license": None,
        "oauthId": "",
        "quotaSizeInBytes": None,
        "quotaUsageInBytes": 0,
        "shouldChangePassword": False,
        "status": "active",
        "storageLabel": "admin",
    }


def album(lib: Library, al: Album) -> dict[str, Any]:
    members = [lib.assets[i] for i in al.asset_ids if i in lib.assets]
    live = [a for a in members if a.deleted_at is None]
    out: dict[str, Any] = {
        "id": al.id,
        "albumName": al.name,
        "description": al.description,
        "albumThumbnailAssetId": live[0].id if live else None,
        "albumUsers": [{"role": "owner", "user": user(lib.users[al.owner_id])}],
        "assetCount": len(live),
        "createdAt": iso(al.created),
        "updatedAt": iso(al.updated),
        "hasSharedLink": False,
        "isActivityEnabled": True,
        "shared": False,
        "order": "desc",
    }
    if live:
        taken = [a.taken for a in live]
        out["startDate"], out["endDate"] = iso(min(taken)), iso(max(taken))
        out["lastModifiedAssetTimestamp"] = iso(max(a.updated for a in live))
    return out


def tag(lib: Library, t: Tag) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": t.id,
        "name": t.name,
        "value": lib.tag_value(t),
        "createdAt": iso(t.created),
        "updatedAt": iso(t.created),
    }
    if t.parent_id:
        out["parentId"] = t.parent_id
    if t.color:
        out["color"] = t.color
    return out


def face(lib: Library, f: Face) -> dict[str, Any]:
    x1, y1, x2, y2 = f.box
    p = lib.people.get(f.person_id) if f.person_id else None
    return {
        "id": f.id,
        "boundingBoxX1": x1,
        "boundingBoxY1": y1,
        "boundingBoxX2": x2,
        "boundingBoxY2": y2,
        "imageWidth": f.image_size[0],
        "imageHeight": f.image_size[1],
        "person": person(p) if p else None,
        "sourceType": "machine-learning",
    }


def memory_window(m: Memory) -> tuple[datetime, datetime]:
    """When Immich shows an on-this-day memory: the whole of its day."""
    start = datetime.combine(m.day, time(0), UTC)
    return start, datetime.combine(m.day, time(23, 59, 59, 999000), UTC)


def memory(lib: Library, m: Memory) -> dict[str, Any]:
    show, hide = memory_window(m)
    members = [lib.assets[i] for i in m.asset_ids if i in lib.assets]
    at = date(m.year, m.day.month, min(m.day.day, 28) if m.day.month == 2 else m.day.day)
    return {
        "id": m.id,
        "type": "on_this_day",
        "data": {"year": m.year},
        "ownerId": lib.owner.id,
        "isSaved": m.saved,
        "memoryAt": iso(datetime.combine(at, time(0), UTC)),
        "showAt": iso(show),
        "hideAt": iso(hide),
        "createdAt": iso(m.created),
        "updatedAt": iso(m.created),
        "assets": [
            asset(lib, a, with_exif=True, with_people=False)
            for a in members
            if a.deleted_at is None
        ],
    }


def api_key(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "permissions": list(key.permissions),
        "createdAt": iso(key.created),
        "updatedAt": iso(key.created),
    }

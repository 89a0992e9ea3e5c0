"""Folder sources: picture files in a local folder as `Asset` records, and the picture-topic
fields of one file. Does I/O (reads the folder, file headers and EXIF).

A file's id comes from its path relative to the folder (`common.folderids`, shared with the
renderer) and its version from its modification time and size, so replacing or editing a file
re-renders it. Sizes are read from the image header, turned upright by its EXIF orientation,
and remembered per (path, mtime, size), so a re-scan opens only new or changed files.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

from bridge.asset import Asset
from common.folderids import scan_folder

_SIZES: dict[tuple[str, int, int], tuple[int, int]] = {}


def image_size(path: Path, mtime_ns: int, size: int) -> tuple[int, int]:
    """Upright (width, height) of an image file from its header; (0, 0) when unreadable."""
    key = (str(path), mtime_ns, size)
    if key not in _SIZES:
        from PIL import Image, UnidentifiedImageError  # only folder sources need Pillow here

        try:
            with Image.open(path) as img:
                width, height = img.size
                orientation = img.getexif().get(0x0112, 1)
        except (OSError, UnidentifiedImageError, ValueError):
            width = height = orientation = 0
        # EXIF orientations 5-8 are stored rotated by a quarter turn.
        _SIZES[key] = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    return _SIZES[key]


def folder_assets(root: str | Path) -> list[Asset]:
    """Every picture file under `root`; its version follows the file's mtime and size."""
    base = Path(root)
    found = []
    files = scan_folder(base)
    # Forget sizes of files that changed or left this folder, so the cache never outgrows it.
    current = {(str(base / rel), mtime, size) for rel, mtime, size in files.values()}
    inside = str(base) + os.sep
    for key in [k for k in _SIZES if k[0].startswith(inside) and k not in current]:
        del _SIZES[key]
    for picture_id, (rel, mtime_ns, size) in files.items():
        width, height = image_size(base / rel, mtime_ns, size)
        found.append(
            Asset(
                id=picture_id,
                checksum=f"file:{mtime_ns}:{size}",
                thumbhash=None,
                width=width,
                height=height,
                taken=mtime_ns / 1e9,
                path=str(base / rel),
            )
        )
    return found


def _exif_time(text: object, offset: object, tz: tzinfo) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        naive = datetime.strptime(text.strip("\x00 "), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    if isinstance(offset, str) and re.fullmatch(r"[+-]\d\d:\d\d", offset.strip()):
        sign = -1 if offset.startswith("-") else 1
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        return naive.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
    return naive.replace(tzinfo=tz)


def folder_meta(path: str, tz: tzinfo) -> dict[str, Any]:
    """Picture-topic fields of a folder photo: EXIF date (else the file's mtime) and caption."""
    from PIL import Image, UnidentifiedImageError

    taken: datetime | None = None
    description = ""
    try:
        with Image.open(path) as img:
            exif = img.getexif()
            sub = exif.get_ifd(0x8769)
            taken = _exif_time(sub.get(0x9003) or exif.get(0x0132), sub.get(0x9011), tz)
            text = exif.get(0x010E)
            description = text.strip("\x00 ") if isinstance(text, str) else ""
        if taken is None:
            taken = datetime.fromtimestamp(os.stat(path).st_mtime, tz)
    except (OSError, UnidentifiedImageError, ValueError):
        pass
    return {
        "taken": taken.isoformat(timespec="seconds") if taken else None,
        "city": None,
        "country": None,
        "people": [],
        "albums": [],
        "description": description,
    }

"""Picture ids and request file names. Pure: strings in, parsed values out.

A picture id is one lower-case UUID, or two joined by `+` (a portrait pair); a request names it
`<picture id>.bmp` or `<picture id>.jpg`. Anything else is rejected before it reaches a cache
path, a log line or Immich.
"""

from __future__ import annotations

import re

from common.manifest import UUID_PATTERN
from common.topics import FRAME_ID_RE

_PICTURE = re.compile(rf"({UUID_PATTERN})(?:\+({UUID_PATTERN}))?")
_NAME = re.compile(r"(.{36}(?:\+.{36})?)\.(bmp|jpg)")

EXTENSIONS = ("bmp", "jpg")
CONTENT_TYPES = {"bmp": "image/bmp", "jpg": "image/jpeg"}


def parse_picture_id(text: str) -> tuple[str, ...] | None:
    """The asset ids of a picture id — one, or two for a pair — or None when malformed."""
    m = _PICTURE.fullmatch(text)
    if m is None:
        return None
    return (m.group(1),) if m.group(2) is None else (m.group(1), m.group(2))


def parse_file_name(name: str) -> tuple[str, str] | None:
    """`"<picture id>.<ext>"` → (picture id, ext), or None when either part is malformed."""
    m = _NAME.fullmatch(name)
    if m is None or parse_picture_id(m.group(1)) is None:
        return None
    return m.group(1), m.group(2)


def is_frame_id(text: str) -> bool:
    """True when `text` can be a frame id (`common.topics.FRAME_ID_PATTERN`)."""
    return FRAME_ID_RE.match(text) is not None

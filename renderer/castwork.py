"""What a render worker does with a cast image: check its size in pixels, render it to the
frame's profile, write the BMP into the cast area. I/O: the one file it writes.

Runs in a worker process (`renderer.work` hands it a `CastTask`), so a hostile image that
exhausts memory or trips a decoder costs a worker, never the serving process. The image's
header is read before any pixel is decoded: a decompression bomb is refused by its declared
size alone.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from common.config import ImageProfile
from renderer import bmp, imaging
from renderer.cache import write_atomic
from renderer.castrules import MAX_PIXELS
from renderer.errors import FailureTuple

_MIME = {"JPEG": "image/jpeg", "PNG": "image/png"}
_REASON_LIMIT = 300


@dataclass(frozen=True)
class CastTask:
    """One cast: the uploaded bytes, their format ("JPEG"/"PNG"), the profile, the file."""

    data: bytes
    fmt: str
    profile: ImageProfile
    path: str


def produce_cast(task: CastTask) -> int | FailureTuple:
    """Render and store one cast: the file's size, or why not (status 400/413/503)."""
    refused = _check_pixels(task.data, task.fmt)
    if refused is not None:
        return refused
    # A cast has no Immich metadata to caption; the frame's fit still applies.
    profile = replace(task.profile, caption=None)
    try:
        img = imaging.render(task.data, _MIME[task.fmt], profile)
        out = bmp.encode(img, profile.format)
    except imaging.ImageError as exc:
        return (
            400,
            "bad_image",
            f"the image cannot be decoded: {exc.reason}"[:_REASON_LIMIT],
            False,
        )
    except Exception as exc:  # MemoryError included: a hostile image must not end the worker
        return (400, "bad_image", f"the image cannot be rendered: {exc!r}"[:_REASON_LIMIT], False)
    try:
        write_atomic(Path(task.path), out)
    except OSError as exc:
        return (503, "cast_unwritable", f"cannot write the cast file: {exc.strerror}", True)
    return len(out)


def _check_pixels(data: bytes, fmt: str) -> FailureTuple | None:
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            width, height = img.size
    except Image.DecompressionBombError as exc:  # Pillow's own limit, far above ours
        return (413, "too_many_pixels", str(exc)[:_REASON_LIMIT], False)
    except Exception as exc:  # a header the decoder cannot read is not an image
        return (400, "bad_image", f"not a valid {fmt} image: {exc}"[:_REASON_LIMIT], False)
    if width * height > MAX_PIXELS:
        reason = f"the image is {width}×{height} pixels; at most {MAX_PIXELS} are decoded"
        return (413, "too_many_pixels", reason, False)
    return None

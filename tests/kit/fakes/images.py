"""Synthetic photos for the fake Immich: real JPEG/WEBP bytes drawn from a seed. Pure, no I/O.

Each asset gets its own colours and shapes from its seed, a white triangle in its top-left
corner (so a test can tell the image is upright) and a skin-coloured ellipse inside each face
box. Sizes follow Immich: `preview` has a short edge of 1440 px, `thumbnail` 250 px, never
enlarged; `fullsize` keeps the original dimensions.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence

from PIL import Image, ImageDraw

SHORT_EDGE = {"preview": 1440, "thumbnail": 250}
FORMATS = {"preview": "JPEG", "thumbnail": "WEBP", "fullsize": "JPEG", "original": "JPEG"}
MEDIA_TYPES = {"JPEG": "image/jpeg", "WEBP": "image/webp"}
SKIN = (224, 172, 140)

# A face box relative to the image: (x1, y1, x2, y2), each 0..1.
RelBox = tuple[float, float, float, float]


def scaled_size(width: int, height: int, size: str) -> tuple[int, int]:
    """Pixel size of the `size` rendition of a `width`×`height` upright original."""
    short = SHORT_EDGE.get(size)
    if short is None or min(width, height) <= short:
        return width, height
    scale = short / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(30, 226), rng.randrange(30, 226), rng.randrange(30, 226)


def draw(seed: int, width: int, height: int, faces: Sequence[RelBox] = ()) -> Image.Image:
    """The picture for `seed` at `width`×`height`, upright."""
    rng = random.Random(seed)
    img = Image.new("RGB", (width, height), _colour(rng))
    pen = ImageDraw.Draw(img)
    for _ in range(3):
        x, y = rng.random() * width, rng.random() * height
        r = (0.15 + rng.random() * 0.3) * min(width, height)
        pen.ellipse((x - r, y - r, x + r, y + r), fill=_colour(rng))
    mark = max(4, min(width, height) // 8)
    pen.polygon([(0, 0), (mark, 0), (0, mark)], fill=(255, 255, 255))
    for x1, y1, x2, y2 in faces:
        pen.ellipse((x1 * width, y1 * height, x2 * width, y2 * height), fill=SKIN)
    return img


def render(
    seed: int, width: int, height: int, size: str, faces: Sequence[RelBox] = ()
) -> tuple[bytes, str]:
    """Encoded bytes and media type of the `size` rendition of an upright original."""
    fmt = FORMATS[size]
    img = draw(seed, *scaled_size(width, height, size), faces)
    out = io.BytesIO()
    img.save(out, fmt, quality=80)
    return out.getvalue(), MEDIA_TYPES[fmt]

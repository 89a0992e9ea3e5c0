"""The original frame's image pipeline, rebuilt from its published description, as yardsticks.

The earlier hobby frame fetched Immich's preview for every request, decoded it in full, padded
it to 480×320 with black bars (``ImageOps.pad``), reduced it to 8 bits with Floyd–Steinberg
dithering and saved an 8-bit BMP. Two versions of the reduction, each named for what it is:

- ``original``: what its server really ran, ``convert("P", colors=256, dither=FLOYDSTEINBERG)``,
  which is Pillow's fixed web palette (216 colours, the same for every picture).
- ``adaptive``: what its README describes, a 256-colour palette adapted to the picture (Pillow's
  median cut), then Floyd–Steinberg against that palette.

Pure: bytes in, bytes out.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image, ImageOps

SIZE = (480, 320)

ORIGINAL = "original frame: Pillow web palette, Floyd–Steinberg"
ADAPTIVE = "adaptive median-cut 256 colours, Floyd–Steinberg"


def _padded(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data)).convert("RGB")
    return ImageOps.pad(img, SIZE, color=(0, 0, 0))


def original_image(data: bytes) -> Image.Image:
    """The original server's conversion: Pillow's default for "P" is the fixed web palette."""
    return _padded(data).convert("P", colors=256, dither=Image.Dither.FLOYDSTEINBERG)


def adaptive_image(data: bytes) -> Image.Image:
    """The README's description: a median-cut palette of the picture, then dithering."""
    padded = _padded(data)
    palette = padded.quantize(256)
    return padded.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)


def _bmp(make: Callable[[bytes], Image.Image], data: bytes) -> bytes:
    out = io.BytesIO()
    make(data).save(out, "BMP")
    return out.getvalue()


def original_bmp(data: bytes) -> bytes:
    """Preview bytes in, the original server's 8-bit BMP out."""
    return _bmp(original_image, data)


def adaptive_bmp(data: bytes) -> bytes:
    """Preview bytes in, the README's adaptive-palette 8-bit BMP out."""
    return _bmp(adaptive_image, data)


BASELINES: dict[str, Callable[[bytes], bytes]] = {ORIGINAL: original_bmp, ADAPTIVE: adaptive_bmp}

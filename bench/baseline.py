"""The original frame's image pipeline, rebuilt from its published description, as a yardstick.

The earlier hobby frame fetched Immich's preview for every request and: decoded it in full,
padded it to 480×320 with black bars (``ImageOps.pad``), reduced it to a 256-colour palette
adapted to the picture with Floyd–Steinberg dithering, and saved an 8-bit BMP. Its README
describes the adaptive palette, and that better version is what we measure against. Pure.
"""

from __future__ import annotations

import io

from PIL import Image, ImageOps

SIZE = (480, 320)


def baseline_image(data: bytes) -> Image.Image:
    """The paletted 480×320 picture the original pipeline would serve."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    padded = ImageOps.pad(img, SIZE, color=(0, 0, 0))
    palette = padded.quantize(256)
    return padded.quantize(palette=palette, dither=Image.Dither.FLOYDSTEINBERG)


def baseline_bmp(data: bytes) -> bytes:
    """Preview bytes in, 8-bit BMP bytes out, as the original served them."""
    out = io.BytesIO()
    baseline_image(data).save(out, "BMP")
    return out.getvalue()

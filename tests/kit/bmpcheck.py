"""A strict reader for the BMPs the frame downloads: every header field checked, pixels returned.

Accepts only what the Titano's ``displayio.OnDiskBitmap`` draws correctly and what the renderer
promises: uncompressed 8-bit paletted (BI_RGB) or 16-bit RGB565 (BI_BITFIELDS, masks
F800/07E0/001F), a 40-, 108- or 124-byte info header, bottom-up rows padded with zeros to 4 bytes,
and nothing after the pixels. Pure: bytes in, image out; raises ``BmpError`` on any deviation.

RGB565 pixels come back with the low bits zero (red 0b11111 → 248), the way displayio widens them,
so the reader's pixels can be compared with displayio's one for one.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

MASKS_565 = (0xF800, 0x07E0, 0x001F)
INFO_HEADER_SIZES = (40, 108, 124)
BI_RGB, BI_BITFIELDS = 0, 3


class BmpError(ValueError):
    """The bytes are not a BMP the frame can show exactly."""


@dataclass(frozen=True)
class Bmp:
    width: int
    height: int
    bpp: int
    offset: int
    header_size: int
    palette: tuple[tuple[int, int, int], ...]  # empty for 16-bit
    image: Image.Image  # RGB, top row first


def _need(ok: bool, message: str) -> None:
    if not ok:
        raise BmpError(message)


def read_bmp(data: bytes) -> Bmp:
    """Parse ``data`` strictly; see the module docstring for what is accepted."""
    _need(len(data) >= 54, f"too short for a BMP: {len(data)} bytes")
    magic, size, res1, res2, offset = struct.unpack_from("<2sIHHI", data, 0)
    _need(magic == b"BM", f"signature {magic!r}, expected b'BM'")
    _need(size == len(data), f"file size field {size} but {len(data)} bytes")
    _need(res1 == res2 == 0, "reserved file header fields are not zero")
    (header_size,) = struct.unpack_from("<I", data, 14)
    _need(header_size in INFO_HEADER_SIZES, f"info header size {header_size}")
    fields = struct.unpack_from("<iiHHIIiiII", data, 18)
    width, height, planes, bpp, compression, image_size, _, _, used, _ = fields
    _need(width > 0, f"width {width}")
    _need(height > 0, f"height {height}: top-down (negative) or empty BMPs draw black")
    _need(planes == 1, f"planes {planes}")
    _need(bpp in (8, 16), f"{bpp} bits per pixel, expected 8 or 16")
    stride = (width * bpp // 8 + 3) & ~3
    _need(image_size in (0, stride * height), f"image size field {image_size}")
    _need(offset + stride * height == len(data), f"pixel offset {offset} + rows ≠ file length")
    palette: tuple[tuple[int, int, int], ...] = ()
    if bpp == 8:
        palette = _palette(data, header_size, offset, compression, used)
    else:
        _masks(data, header_size, offset, compression)
    rows = np.frombuffer(data, np.uint8, stride * height, offset).reshape(height, stride)
    row_bytes = width * bpp // 8
    _need(not rows[:, row_bytes:].any(), "row padding bytes are not zero")
    pixels = rows[::-1, :row_bytes]  # bottom-up on disk
    if bpp == 8:
        _need(int(pixels.max()) < len(palette), "pixel index beyond the palette")
        rgb = np.array(palette, np.uint8)[pixels]
    else:
        words = pixels.copy().view("<u2").astype(np.uint16)
        rgb = np.stack(
            [(words >> 11) << 3, ((words >> 5) & 0x3F) << 2, (words & 0x1F) << 3], axis=-1
        ).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    return Bmp(width, height, bpp, offset, header_size, palette, image)


def _palette(
    data: bytes, header_size: int, offset: int, compression: int, used: int
) -> tuple[tuple[int, int, int], ...]:
    _need(compression == BI_RGB, f"8-bit compression {compression}, expected BI_RGB (0)")
    count = used or 256
    _need(1 < count <= 256, f"{count} palette colours (displayio needs 2 to 256)")
    start = 14 + header_size
    _need(
        offset == start + 4 * count,
        f"pixel offset {offset} does not follow a {count}-colour palette",
    )
    raw = data[start:offset]
    _need(all(raw[i + 3] == 0 for i in range(0, len(raw), 4)), "palette reserved bytes not zero")
    return tuple((raw[i + 2], raw[i + 1], raw[i]) for i in range(0, len(raw), 4))


def _masks(data: bytes, header_size: int, offset: int, compression: int) -> None:
    _need(
        compression == BI_BITFIELDS, f"16-bit compression {compression}, expected BI_BITFIELDS (3)"
    )
    # A 40-byte header is followed by the three masks; V4/V5 headers hold them at the same place.
    masks = struct.unpack_from("<3I", data, 54)
    expected = 66 if header_size == 40 else 14 + header_size
    _need(offset == expected, f"pixel offset {offset}, expected {expected}")
    _need(masks == MASKS_565, f"bit masks {[hex(m) for m in masks]}, expected RGB565")


def check(data: bytes) -> Bmp:
    """Alias of read_bmp for tests that only need the validation."""
    return read_bmp(data)

"""Encoders for what the frame and people download: RGB565 and 8-bit paletted BMPs, and JPEG.

Pure: an RGB image in, file bytes out. The BMPs are laid out the way the Titano's
``displayio.OnDiskBitmap`` reads them: a 40-byte BITMAPINFOHEADER, bottom-up rows (a top-down BMP
draws black), rows padded to 4 bytes, and for 16 bits BI_BITFIELDS with the RGB565 masks.

The panel shows RGB565. The 8-bit writer therefore quantizes colours already reduced to what the
panel can show and only uses palette entries the panel reproduces exactly, so Floyd–Steinberg
dithering spreads the error the viewer will really see.
"""

from __future__ import annotations

import io
import struct

from PIL import Image, ImageChops

from common.configmodel import FORMATS

_BI_RGB = 0
_BI_BITFIELDS = 3
_FILE_HEADER = 14
_INFO_HEADER = 40
_MASKS_565 = struct.pack("<3I", 0xF800, 0x07E0, 0x001F)
_PIXELS_PER_METRE = 2835  # 72 dpi; nobody reads it but zero upsets some viewers


def _headers(width: int, height: int, bpp: int, compression: int, extra: int) -> bytes:
    """File header + BITMAPINFOHEADER; ``extra`` is what sits between them and the pixels."""
    stride = _stride(width, bpp)
    offset = _FILE_HEADER + _INFO_HEADER + extra
    size = offset + stride * height
    colours = 256 if bpp == 8 else 0
    file_header = struct.pack("<2sIHHI", b"BM", size, 0, 0, offset)
    info = struct.pack(
        "<IiiHHIIiiII",
        _INFO_HEADER,
        width,
        height,  # positive: bottom-up rows
        1,
        bpp,
        compression,
        stride * height,
        _PIXELS_PER_METRE,
        _PIXELS_PER_METRE,
        colours,
        colours,
    )
    return file_header + info


def _stride(width: int, bpp: int) -> int:
    return (width * bpp // 8 + 3) & ~3


def _rows(img: Image.Image, rawmode: str, bpp: int) -> bytes:
    """Pixel rows bottom-up, each padded to a multiple of 4 bytes."""
    stride = _stride(img.width, bpp)
    data = img.tobytes("raw", rawmode, stride, -1)
    if len(data) != stride * img.height:  # the raw packer pads only when asked to via stride
        raise AssertionError("unexpected row layout")
    return data


def _level_lut(bits: int) -> list[int]:
    """8-bit values → the value the panel shows after keeping only the top ``bits`` bits."""
    drop = 8 - bits
    return [((v >> drop) << drop) | ((v >> drop) >> (bits - drop)) for v in range(256)]


# What each RGB888 colour looks like on the RGB565 panel, expressed as RGB888 again.
PANEL_LUT = _level_lut(5) + _level_lut(6) + _level_lut(5)


def to_panel(img: Image.Image) -> Image.Image:
    """``img`` as the RGB565 panel will show it (each channel truncated, then rescaled)."""
    return img.convert("RGB").point(PANEL_LUT)


_R_HIGH = [v & 0xF8 for v in range(256)]
_G_HIGH = [v >> 5 for v in range(256)]
_G_LOW = [(v << 3) & 0xE0 for v in range(256)]
_B_LOW = [v >> 3 for v in range(256)]


def encode_bmp16(img: Image.Image) -> bytes:
    """RGB565 BMP, BI_BITFIELDS masks F800/07E0/001F, pixel data at offset 66."""
    rgb = img.convert("RGB")
    r, g, b = rgb.split()
    # Assemble the two bytes of each little-endian RGB565 word from non-overlapping bit fields,
    # so plain saturating adds are exact.
    high = ImageChops.add(r.point(_R_HIGH), g.point(_G_HIGH))
    low = ImageChops.add(g.point(_G_LOW), b.point(_B_LOW))
    words = Image.merge("LA", (low, high))
    header = _headers(rgb.width, rgb.height, 16, _BI_BITFIELDS, len(_MASKS_565))
    return header + _MASKS_565 + _rows(words, "LA", 16)


def encode_bmp8(img: Image.Image) -> bytes:
    """256-colour BMP: adaptive palette of panel colours, Floyd–Steinberg dithered."""
    panel = to_panel(img)
    palette_img = panel.quantize(256, method=Image.Quantize.FASTOCTREE)
    palette = palette_img.getpalette() or []
    palette_img.putpalette([PANEL_LUT[i % 3 * 256 + v] for i, v in enumerate(palette)])
    indexed = panel.quantize(palette=palette_img, dither=Image.Dither.FLOYDSTEINBERG)
    rgb = bytes((indexed.getpalette() or [])[: 256 * 3]).ljust(256 * 3, b"\0")
    bgrx = Image.frombytes("RGB", (256, 1), rgb).tobytes("raw", "BGRX")  # BMP's entry layout
    header = _headers(img.width, img.height, 8, _BI_RGB, len(bgrx))
    return header + bgrx + _rows(indexed, "P", 8)


def encode_jpeg(img: Image.Image, quality: int = 85) -> bytes:
    """A plain JPEG of the picture, for people and Home Assistant."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def encode(img: Image.Image, fmt: str) -> bytes:
    """The frame's download for render profile format ``fmt`` (one of FORMATS)."""
    if fmt == "bmp16":
        return encode_bmp16(img)
    if fmt == "bmp8":
        return encode_bmp8(img)
    raise ValueError(f"unknown image format {fmt!r}, expected one of {', '.join(FORMATS)}")

"""The frame's downloads: exact BMP layout, what displayio reads back, 8-bit quality, JPEG."""

from __future__ import annotations

import io
import struct
from typing import Any

import displayio
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from renderer.bmp import PANEL_LUT, encode, encode_bmp8, encode_bmp16, encode_jpeg, to_panel
from tests.kit.bmpcheck import BmpError, read_bmp


def scene(width: int = 480, height: int = 320) -> Image.Image:
    """Smooth gradients with a few hard-edged shapes: hard for a palette, easy to eyeball."""
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    rgb = np.stack([255 * x * (1 - y), 255 * y + 0 * x, 255 * (1 - x) * (0.3 + 0.7 * y)], -1)
    img = Image.fromarray(rgb.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    draw.ellipse((width * 0.1, height * 0.2, width * 0.4, height * 0.7), fill=(250, 200, 40))
    draw.rectangle((width * 0.6, height * 0.1, width * 0.9, height * 0.5), fill=(20, 20, 30))
    draw.line((0, height - 1, width - 1, 0), fill=(255, 255, 255), width=3)
    return img


def displayio_pixels(data: bytes) -> Image.Image:
    """Every pixel read back the way displayio does on the frame: OnDiskBitmap + pixel shader."""
    bitmap: Any = displayio.OnDiskBitmap(io.BytesIO(data))
    shader: Any = bitmap.pixel_shader
    indexed = isinstance(shader, displayio.Palette)
    out = bytearray()
    for y in range(bitmap.height):
        for x in range(bitmap.width):
            value = bitmap._get_pixel(x, y)  # what a TileGrid asks for when it draws
            colour = shader[value] if indexed else value
            out += bytes(((colour >> 16) & 0xFF, (colour >> 8) & 0xFF, colour & 0xFF))
    return Image.frombytes("RGB", (bitmap.width, bitmap.height), bytes(out))


def blurred_psnr(a: Image.Image, b: Image.Image) -> float:
    fa = np.asarray(a.filter(ImageFilter.GaussianBlur(1)), float)
    fb = np.asarray(b.filter(ImageFilter.GaussianBlur(1)), float)
    return float(10 * np.log10(255**2 / max(((fa - fb) ** 2).mean(), 1e-9)))


def test_bmp16_layout_is_exact() -> None:
    data = encode_bmp16(scene())
    assert len(data) == 307_266
    bmp = read_bmp(data)
    assert (bmp.width, bmp.height, bmp.bpp, bmp.offset, bmp.header_size) == (480, 320, 16, 66, 40)


def test_bmp16_pixels_are_the_source_truncated_to_rgb565() -> None:
    src = scene()
    got = read_bmp(encode_bmp16(src)).image
    # Green keeps six bits, red and blue five.
    want = np.asarray(src) & np.array([0xF8, 0xFC, 0xF8], np.uint8)
    assert np.array_equal(np.asarray(got), want)


def test_bmp8_layout_is_exact_with_a_full_palette_of_panel_colours() -> None:
    data = encode_bmp8(scene())
    assert len(data) == 154_678
    bmp = read_bmp(data)
    assert (bmp.bpp, bmp.offset, len(bmp.palette)) == (8, 1078, 256)
    for colour in bmp.palette:  # each entry survives the panel's RGB565 unchanged
        assert tuple(PANEL_LUT[c * 256 + v] for c, v in enumerate(colour)) == colour


@pytest.mark.parametrize("encoder", [encode_bmp8, encode_bmp16])
def test_displayio_reads_the_same_pixels_as_the_strict_reader(encoder: object) -> None:
    data = encoder(scene())  # type: ignore[operator]
    ours = read_bmp(data).image
    theirs = displayio_pixels(data)
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


# displayio's CPython port reads a fixed 138-byte header block, so every size here makes a file
# at least that long; 1×1 is checked by the strict reader alone.
@pytest.mark.parametrize("size", [(1, 40), (3, 20), (241, 5), (7, 9)])
@pytest.mark.parametrize("encoder", [encode_bmp8, encode_bmp16])
def test_odd_widths_get_zero_padded_rows(encoder: object, size: tuple[int, int]) -> None:
    data = encoder(scene(*size))  # type: ignore[operator]
    bmp = read_bmp(data)  # checks the padding bytes are zero and the length is exact
    assert bmp.image.size == size
    assert np.array_equal(np.asarray(bmp.image), np.asarray(displayio_pixels(data)))


@pytest.mark.parametrize("encoder", [encode_bmp8, encode_bmp16])
def test_a_single_pixel_encodes(encoder: object) -> None:
    pixel = Image.new("RGB", (1, 1), (255, 128, 8))
    bmp = read_bmp(encoder(pixel))  # type: ignore[operator]
    # The same RGB565 colour on the panel: (31, 32, 1).
    assert to_panel(bmp.image).getpixel((0, 0)) == to_panel(pixel).getpixel((0, 0))


def test_bmp8_dithers_instead_of_banding() -> None:
    grey = Image.linear_gradient("L").rotate(90).resize((480, 320))
    ramp = Image.merge("RGB", (grey, grey.point(lambda v: v // 2), grey.point(lambda v: 255 - v)))
    got = read_bmp(encode_bmp8(ramp)).image
    row = np.asarray(got)[160]
    changes = int((np.diff(row.astype(int), axis=0) != 0).any(axis=1).sum())
    colours = len({tuple(p) for p in row})
    assert changes > 2 * colours  # colours alternate along the ramp rather than stepping once
    assert blurred_psnr(got, to_panel(ramp)) > 38


def test_bmp8_looks_like_what_the_panel_would_show_of_the_source() -> None:
    src = scene()
    got = read_bmp(encode_bmp8(src)).image
    assert blurred_psnr(to_panel(got), to_panel(src)) > 38


def test_encode_picks_the_profile_format() -> None:
    img = scene()
    assert encode(img, "bmp16") == encode_bmp16(img)
    assert len(encode(img, "bmp8")) == 154_678
    with pytest.raises(ValueError, match="bmp24"):
        encode(img, "bmp24")


def test_jpeg_is_a_480x320_jpeg() -> None:
    data = encode_jpeg(scene(), quality=85)
    with Image.open(io.BytesIO(data)) as img:
        assert (img.format, img.size, img.mode) == ("JPEG", (480, 320), "RGB")
        assert blurred_psnr(img.convert("RGB"), scene()) > 30


def _patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


GOOD16, GOOD8 = encode_bmp16(scene(8, 4)), encode_bmp8(scene(8, 4))
BROKEN = {
    "signature": b"BN" + GOOD16[2:],
    "size field": _patched(GOOD16, 2, "<I", len(GOOD16) + 1),
    "trailing bytes": GOOD16 + b"\0",
    "truncated": GOOD16[:-2],
    "top-down": _patched(GOOD16, 22, "<i", -4),
    "header size": _patched(GOOD16, 14, "<I", 12),
    "planes": _patched(GOOD16, 26, "<H", 2),
    "24 bits": _patched(GOOD16, 28, "<H", 24),
    "555 masks": _patched(GOOD16, 58, "<I", 0x03E0),
    "16-bit BI_RGB": _patched(GOOD16, 30, "<I", 0),
    "RLE8": _patched(GOOD8, 30, "<I", 1),
    "one-colour palette": _patched(GOOD8, 46, "<I", 1),
    "palette reserved byte": _patched(GOOD8, 54 + 3, "<B", 1),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_the_strict_reader_rejects_what_the_frame_would_draw_wrong(name: str) -> None:
    read_bmp(GOOD16), read_bmp(GOOD8)  # the unbroken originals pass
    with pytest.raises(BmpError):
        read_bmp(BROKEN[name])


def test_the_strict_reader_rejects_dirty_row_padding() -> None:
    data = bytearray(encode_bmp16(scene(3, 2)))  # 6 bytes of pixels + 2 of padding per row
    data[66 + 6] = 0xFF
    with pytest.raises(BmpError, match="padding"):
        read_bmp(bytes(data))

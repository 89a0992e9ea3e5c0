"""Checks a downloaded picture's BMP header before it may replace anything on the card. Pure.

The Titano draws pictures with `displayio.OnDiskBitmap`, which renders a top-down BMP black and
wants BI_BITFIELDS with the RGB565 masks for 16 bits. What the renderer sends is an 8-bit
paletted or a 16-bit RGB565 BMP with a 40-, 108- or 124-byte info header, bottom-up.
"""

import struct

HEAD = 66  # enough for the file and info headers and the 16-bit green mask
_BI_RGB = 0
_BI_BITFIELDS = 3
_GREEN_565 = 0x07E0


def check(head: bytes, size: int, width: int = 480, height: int = 320) -> str | None:
    """None when `head` (the first HEAD bytes) starts a usable picture of `size` bytes, else why.

    `width` or `height` 0 accepts any size.
    """
    if len(head) < HEAD or head[0:2] != b"BM":
        return "not a BMP file"
    fields = struct.unpack_from("<IHHIIiiHHI", head, 2)
    stated, _, _, offset, info, w, h, planes, bpp, compression = fields
    if stated != size:
        return f"BMP says {stated} bytes, file has {size}"
    if info not in (40, 108, 124) or planes != 1:
        return f"unsupported BMP info header ({info} bytes)"
    if h <= 0:
        return "top-down BMP (renders black)"
    if (width and w != width) or (height and h != height):
        return f"picture is {w}x{h}, the screen {width}x{height}"
    if bpp == 8:
        if compression != _BI_RGB:
            return "compressed 8-bit BMP"
    elif bpp == 16:
        green = struct.unpack_from("<I", head, 58)[0]
        if compression != _BI_BITFIELDS or green != _GREEN_565:
            return "16-bit BMP is not RGB565"
    else:
        return f"{bpp}-bit BMP (8 or 16 wanted)"
    stride = (w * bpp // 8 + 3) & ~3
    if offset < 14 + info or offset + stride * h > size:
        return "BMP pixel data does not fit the file"
    return None

"""Picture captions drawn legibly on any background. Pure: values in, values out (drawing
happens on an image the caller owns).

The caption's text comes from its format (`common.caption`); here it is folded onto the glyphs
the font bundled with Pillow has, cut to the width of the picture and drawn on a dark band.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from common.caption import CaptionError

# Glyphs the font bundled with Pillow actually has (it is a Latin subset); anything else would
# draw as an empty box, so captions are folded onto this set first.
GLYPHS = frozenset("".join(chr(c) for c in range(0x20, 0x7F)) + "©«°±´·»‘’“”…‹›⁄™")
_FOLD = str.maketrans(
    {
        "ß": "ss",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "đ": "d",
        "Đ": "D",
        "þ": "th",
        "Þ": "Th",
        "–": "-",
        "—": "-",
        "\u00a0": " ",
    }
)

FONT_SIZE = 18
PADDING = 6
BAND_OPACITY = 0.6  # share of black laid over the picture behind the text


def fold(text: str) -> str:
    """``text`` reduced to glyphs the bundled font can draw (é→e, ß→ss; others are dropped)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    kept = "".join(c for c in decomposed if c in GLYPHS)
    return " ".join(kept.split())


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    font = ImageFont.load_default(size=size)
    if not isinstance(font, ImageFont.FreeTypeFont):  # Pillow built without FreeType
        raise CaptionError("captions need Pillow with FreeType support")
    return font


def draw_caption(img: Image.Image, text: str, box: tuple[int, int, int, int]) -> None:
    """Draw ``text`` along the bottom of ``box`` (left, top, right, bottom) of ``img``, in place.

    White letters with a dark outline on a translucent dark band: readable on snow and on night.
    """
    text = fold(text)
    if not text:
        return
    font = _font(FONT_SIZE)
    left, _top, right, bottom = box
    text = _fit_width(text, font, right - left - 2 * PADDING)
    ascent, descent = font.getmetrics()
    band = (left, bottom - ascent - descent - 2 * PADDING, right, bottom)
    region = img.crop(band)
    img.paste(Image.blend(region, Image.new("RGB", region.size), BAND_OPACITY), band[:2])
    draw = ImageDraw.Draw(img)
    draw.text(
        (left + PADDING, band[1] + PADDING),
        text,
        font=font,
        fill=(255, 255, 255),
        stroke_width=2,
        stroke_fill=(0, 0, 0),
    )


def _fit_width(text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    """The longest prefix of ``text`` that fits ``width`` pixels, with "…" when cut."""
    # Every glyph is at least a pixel wide, so a text longer than `width` characters cannot fit,
    # and no more than `width` of them can precede the "…": a long Immich description costs a
    # few measurements, not one per character over the whole text.
    if len(text) <= width and font.getlength(text) <= width:
        return text
    fits, over = 0, min(len(text), max(width, 0)) + 1
    while over - fits > 1:
        mid = (fits + over) // 2
        if font.getlength(text[:mid] + "…") <= width:
            fits = mid
        else:
            over = mid
    return text[:fits].rstrip(" ·,-") + "…"

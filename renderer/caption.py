"""Picture captions: a format string over a photo's metadata, drawn legibly on any background.

Pure: values in, values out (drawing happens on an image the caller owns). A caption format is
ordinary ``str.format`` syntax over a fixed set of field names, e.g. ``"{taken:%b %Y} · {city}"``.
Missing fields render empty and the separators left dangling around them are dropped, so a photo
without a place reads "Mar 2024", not "Mar 2024 · ".
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

# The fields a caption may use, with a sample value of the type each one carries; the samples let
# a format be checked once, when the config is loaded, instead of failing on every picture.
FIELDS: Mapping[str, object] = {
    "taken": datetime(2024, 3, 9, 14, 30),
    "city": "Lyon",
    "state": "Auvergne-Rhône-Alpes",
    "country": "France",
    "description": "Picnic by the river",
    "people": "Ada, Grace",
    "album": "Holidays",
    "camera": "Pixel 8",
    "filename": "IMG_0001.jpg",
}

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


class CaptionError(ValueError):
    """A caption format that cannot be used; the message says why."""


def validate_caption(fmt: str) -> str | None:
    """Return None when ``fmt`` is a usable caption format, else a message saying what is wrong."""
    if not isinstance(fmt, str):
        return f"caption must be a string, got {fmt!r}"
    try:
        _check(fmt)
    except CaptionError as exc:
        return str(exc)
    return None


def format_caption(fmt: str, meta: Mapping[str, Any]) -> str:
    """The caption text for one picture; raises CaptionError when ``fmt`` itself is invalid."""
    prefix, fields, suffix = _check(fmt)
    if not fields:
        return prefix.strip()
    text = ""
    for literal, name, spec in fields:
        value = _render_field(meta.get(name), spec)
        if value:
            text += (literal if text else prefix) + value
    return (text + suffix).strip() if text else ""


Fields = tuple[tuple[str, str, str], ...]


@lru_cache(maxsize=64)
def _check(fmt: str) -> tuple[str, Fields, str]:
    """Split ``fmt`` into prefix, (literal before, name, spec) per field, and suffix.

    Rejects what captions do not serve: unknown or positional fields, attribute or index access,
    conversions, nested specs and specs that fail on the field's type.
    """
    try:
        parsed = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise CaptionError(f"caption {fmt!r} is not a valid format: {exc}") from None
    fields: list[tuple[str, str, str]] = []
    suffix = ""
    for literal, name, spec, conversion in parsed:
        if name is None:
            suffix = literal
            continue
        if name not in FIELDS:
            known = ", ".join(sorted(FIELDS))
            raise CaptionError(f"caption field {{{name}}} is unknown (known fields: {known})")
        if conversion or "{" in (spec or ""):
            raise CaptionError(f"caption field {{{name}}} may not use conversions or nested fields")
        _render_field(FIELDS[name], spec or "", strict=True)
        fields.append((literal, name, spec or ""))
    if not fields:
        return suffix, (), ""
    return fields[0][0], tuple(fields), suffix


def _render_field(value: object, spec: str, strict: bool = False) -> str:
    """One field's text; a value of the wrong type renders empty rather than failing the picture."""
    if value is None or value == "":
        return ""
    if isinstance(value, str) and spec and "%" in spec:
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return ""
    if isinstance(value, list | tuple):
        value = ", ".join(str(v) for v in value if v)
    try:
        return format(value, spec).strip()
    except (ValueError, TypeError) as exc:
        if strict:
            raise CaptionError(f"caption format spec {spec!r} is invalid: {exc}") from None
        return ""


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

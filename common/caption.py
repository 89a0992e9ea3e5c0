"""Caption formats: which fields a caption may name and the text a format gives. Pure, no I/O.

A caption format is ordinary ``str.format`` syntax over a fixed set of field names, e.g.
``"{taken:%b %Y} · {city}"``. Missing fields render empty and the separators left dangling around
them are dropped, so a photo without a place reads "Mar 2024", not "Mar 2024 · ". The config
checks a format with `validate_caption` when it is loaded; the renderer draws the text
(`renderer.caption`).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any

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

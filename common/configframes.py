"""Checking the config's `frames:` section: frame ids, sources, excludes, image profile and
schedule. Pure, except that `folder` sources must exist on disk.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common.brokerauth import RESERVED_USERS
from common.caption import validate_caption
from common.configcheck import (
    Checker,
    Invalid,
    Problems,
    boolean,
    choice,
    existing_path,
    index,
    join,
    text,
)
from common.configmodel import (
    DAYS,
    EXCLUDE_KINDS,
    FITS,
    FORMATS,
    HIDE_TAG,
    IMMICH_SOURCES,
    LONG_PRESS,
    SCHEDULE_COMMANDS,
    SOURCE_KINDS,
    STACKS,
    Exclude,
    FrameConfig,
    ImageProfile,
    ScheduleEntry,
    Source,
)
from common.topics import FRAME_ID_PATTERN

FRAME_KEYS = ("secret", "sources", "exclude", "image", "schedule", "cast_token", "long_press")


def parse_frames(
    p: Problems, path: str, data: object, base_dir: Path, has_immich: bool
) -> tuple[FrameConfig, ...]:
    frames = p.mapping(path, data)
    if frames is None:
        return ()
    if not frames:
        p.add(path, "expected at least one frame, such as `kitchen: {sources: [...]}`", data)
    out = []
    for frame_id, body in frames.items():
        fpath = join(path, frame_id)
        _check_frame_id(p, fpath, frame_id)
        frame = _parse_frame(p, fpath, str(frame_id), body, base_dir, has_immich)
        if frame is not None:
            out.append(frame)
    return tuple(out)


def _check_frame_id(p: Problems, path: str, frame_id: object) -> None:
    if not isinstance(frame_id, str) or not re.fullmatch(FRAME_ID_PATTERN, frame_id):
        p.add(path, f"expected a frame id matching {FRAME_ID_PATTERN}", frame_id)
    elif frame_id in RESERVED_USERS:
        reserved = "|".join(RESERVED_USERS)
        p.add(path, f"frame id is reserved for a service's MQTT user ({reserved})", frame_id)


def _parse_frame(
    p: Problems, path: str, frame_id: str, data: object, base_dir: Path, has_immich: bool
) -> FrameConfig | None:
    body = p.mapping(path, data)
    if body is None:
        return None
    p.unknown_keys(path, body, FRAME_KEYS)
    secret = p.check(join(path, "secret"), body.get("secret"), text(optional=True))
    sources = _sources(p, join(path, "sources"), body.get("sources"), base_dir, has_immich)
    exclude = _items(p, join(path, "exclude"), body.get("exclude"), EXCLUDE_KINDS, "exclusion")
    image = _image(p, join(path, "image"), body.get("image"))
    schedule = _schedule(p, join(path, "schedule"), body.get("schedule"))
    # YAML reads a bare `off` as false
    pressed = body.get("long_press", "off")
    pressed = "off" if pressed is False else pressed
    long_press = p.check(join(path, "long_press"), pressed, choice(LONG_PRESS))
    excluded = [Exclude(kind, str(value)) for kind, value, _, _ in exclude]
    hide = Exclude("tag", HIDE_TAG)
    if long_press == "hide" and hide not in excluded:
        excluded.append(hide)  # what `hide` is for: the photo leaves this frame at once
    cast_token = p.check(join(path, "cast_token"), body.get("cast_token"), text(optional=True))
    return FrameConfig(
        id=frame_id,
        secret=secret,
        sources=sources,
        exclude=tuple(excluded),
        image=image,
        schedule=schedule,
        long_press=str(long_press or "off"),
        cast_token=cast_token,
    )


def _sources(
    p: Problems, path: str, data: object, base_dir: Path, has_immich: bool
) -> tuple[Source, ...]:
    if data is None or data == []:
        kinds = "|".join(SOURCE_KINDS)
        p.add(path, f"a frame needs at least one source ({kinds})", data)
        return ()
    out = []
    found = _items(p, path, data, SOURCE_KINDS, "source", base_dir, options=("stacks",))
    for kind, value, item_path, options in found:
        if kind in IMMICH_SOURCES and not has_immich:
            p.add(item_path, "this source needs an `immich:` section (url, api_key)", value)
        stacks = options.get("stacks", "primary")
        if stacks != "primary" and kind == "folder":
            p.add(_sibling(item_path, "stacks"), "a folder has no stacks; remove it", stacks)
        out.append(Source(kind, value, stacks))
    return tuple(out)


def _sibling(item_path: str, key: str) -> str:
    """The path of another key of the same list entry."""
    return join(item_path.rsplit(".", 1)[0], key)


def _source_checker(kind: str, base_dir: Path | None) -> Checker:
    if kind in ("favorites", "memories"):
        return _true
    if kind == "folder" and base_dir is not None:
        folder = existing_path(base_dir, "dir")
        return lambda value: str(folder(value))
    return text()


def _true(value: Any) -> bool:
    if value is not True:
        raise Invalid("expected true (remove the entry to turn it off)")
    return True


# Keys a source entry may have besides its kind, and their checks.
OPTIONS = {"stacks": choice(STACKS)}


def _items(
    p: Problems,
    path: str,
    data: object,
    kinds: tuple[str, ...],
    what: str,
    base_dir: Path | None = None,
    options: tuple[str, ...] = (),
) -> list[tuple[str, Any, str, dict[str, str]]]:
    """One-key mappings such as `[{album: Family}, {tag: frame}]` → (kind, value, path, the
    entry's `options` keys, such as `{album: Bursts, stacks: all}`)."""
    if data is None:
        return []
    if not isinstance(data, list):
        p.add(path, f"expected a list of {what}s such as [{{{kinds[0]}: ...}}]", data)
        return []
    out = []
    for i, item in enumerate(data):
        item_path = index(path, i)
        keys = [k for k in item if k not in options] if isinstance(item, dict) else []
        if not isinstance(item, dict) or len(keys) != 1:
            p.add(item_path, f"expected one {what} key, one of {'|'.join(kinds)}", item)
            continue
        kind, raw = keys[0], item[keys[0]]
        if kind not in kinds:
            close = difflib.get_close_matches(str(kind), kinds, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            p.add(join(item_path, kind), f"unknown {what}{hint}, expected {'|'.join(kinds)}", kind)
            continue
        before = p.count
        extra = {k: p.check(join(item_path, k), item[k], OPTIONS[k]) for k in options if k in item}
        value = p.check(join(item_path, kind), raw, _source_checker(kind, base_dir))
        if p.count == before:
            out.append((kind, value, join(item_path, kind), extra))
    return out


def _caption(value: Any) -> str | None:
    checked: str | None = text(optional=True)(value)
    problem = None if checked is None else validate_caption(checked)
    if problem is not None:
        raise Invalid(problem)
    return checked


def _image(p: Problems, path: str, data: object) -> ImageProfile:
    body = p.mapping(path, data)
    checks = {
        "format": choice(FORMATS),
        "fit": choice(FITS),
        "pair_portraits": boolean,
        "caption": _caption,
    }
    return ImageProfile(**p.fields(path, body or {}, checks))


# --- schedule ---------------------------------------------------------------------------------


def _schedule(p: Problems, path: str, data: object) -> tuple[ScheduleEntry, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        p.add(path, 'expected a list of entries such as [{at: "23:00", display: "OFF"}]', data)
        return ()
    entries = (_entry(p, index(path, i), item) for i, item in enumerate(data))
    return tuple(e for e in entries if e is not None)


def _entry(p: Problems, path: str, data: object) -> ScheduleEntry | None:
    body = p.mapping(path, data)
    if body is None:
        return None
    p.unknown_keys(path, body, ("at", "days", *SCHEDULE_COMMANDS))
    at = p.check(join(path, "at"), body["at"], _clock) if "at" in body else None
    if "at" not in body:
        p.add(join(path, "at"), 'required key is missing, expected "HH:MM"', None)
    days = p.check(join(path, "days"), body.get("days"), _days, ())
    commands = []
    for name, raw in body.items():
        if name in SCHEDULE_COMMANDS:
            payload = p.check(join(path, name), raw, _COMMANDS[name])
            commands.append((name, payload))
    if not commands:
        p.add(path, f"expected at least one command ({'|'.join(SCHEDULE_COMMANDS)})", data)
    if at is None or any(payload is None for _, payload in commands):
        return None
    return ScheduleEntry(at=at, days=days, commands=tuple(commands))


def _clock(value: Any) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        raise Invalid('expected "HH:MM" in quotes (YAML reads an unquoted time as a number)')
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value) if isinstance(value, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise Invalid('expected a time "HH:MM" from 00:00 to 23:59')
    return int(match[1]), int(match[2])


_DAY_NAMES = {
    **{d: d for d in DAYS},
    **dict(zip(("monday", "tuesday", "wednesday", "thursday", "friday"), DAYS, strict=False)),
    "saturday": "sat",
    "sunday": "sun",
}


def _days(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    names: Iterable[Any] = re.split(r"[\s,]+", value.strip()) if isinstance(value, str) else value
    if not isinstance(names, list | tuple):
        raise Invalid(f"expected a list of days from {'|'.join(DAYS)}")
    days = set()
    for name in names:
        day = _DAY_NAMES.get(name.strip().lower()) if isinstance(name, str) else None
        if day is None:
            raise Invalid(f"unknown day {name!r}, expected days from {'|'.join(DAYS)}")
        days.add(day)
    return tuple(d for d in DAYS if d in days)


def _on_off(value: Any) -> str:
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, str) and value.strip().upper() in ("ON", "OFF"):
        return value.strip().upper()
    raise Invalid("expected ON or OFF")


def _level(lo: int, hi: int) -> Checker:
    def check(value: Any) -> str:
        if isinstance(value, str) and value.strip().isdecimal():  # int() refuses "²"
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise Invalid(f"expected an integer from {lo} to {hi}")
        return str(value)

    return check


_COMMANDS: dict[str, Checker] = {
    "display": _on_off,
    "pause": _on_off,
    "auto_brightness": _on_off,
    "brightness": _level(0, 100),
    "interval": _level(5, 86400),
}

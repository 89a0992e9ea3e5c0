"""Guest pictures: photos sent to a frame (`show` of a photo outside its manifest) that stay in
its slideshow until a set time. Pure, no I/O: payloads in and out, `now` passed in.

The bridge keeps them retained on `<base>/<frame>/guests` (JSON, read back at start like the
manifests), so a restart neither forgets a guest nor keeps one past its time:

    {"v": 1, "guests": {"<asset id>": {"version": "1a2b3c4d", "taken": 1763884800,
                                        "until": 1764489600}}}

`taken` is when the photo was sent: a manifest that overflows keeps its newest pictures, so a
guest is among the last to be dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

# A frame holds at most this many guests; the oldest leaves when one more comes.
MAX_GUESTS = 50


@dataclass(frozen=True)
class Guest:
    version: str
    taken: float
    until: float


def parse(payload: bytes) -> dict[str, Guest]:
    """The guests of a retained payload; anything unusable is left out (never raises)."""
    try:
        doc = json.loads(payload.decode()) if payload else {}
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    rows = doc.get("guests") if isinstance(doc, dict) else None
    found: dict[str, Guest] = {}
    for asset_id, row in (rows if isinstance(rows, dict) else {}).items():
        if not isinstance(row, dict):
            continue
        version, taken, until = (
            row.get("version"),
            _number(row.get("taken")),
            _number(row.get("until")),
        )
        if isinstance(version, str) and taken is not None and until is not None:
            found[str(asset_id)] = Guest(version, taken, until)
    return found


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def payload(guests: Mapping[str, Guest]) -> bytes:
    """The retained payload; b"" (clears the topic) when there are none."""
    if not guests:
        return b""
    rows = {
        gid: {"version": g.version, "taken": int(g.taken), "until": int(g.until)}
        for gid, g in sorted(guests.items())
    }
    return json.dumps({"v": 1, "guests": rows}, separators=(",", ":")).encode()


def add(guests: Mapping[str, Guest], asset_id: str, guest: Guest) -> dict[str, Guest]:
    """`guests` with one more (or renewed); the oldest go past MAX_GUESTS."""
    out = {k: v for k, v in guests.items() if k != asset_id}
    out[asset_id] = guest
    while len(out) > MAX_GUESTS:
        del out[min(out, key=lambda k: out[k].taken)]
    return out


def live(guests: Mapping[str, Guest], now: float) -> dict[str, Guest]:
    """The guests whose time has not come."""
    return {k: g for k, g in guests.items() if g.until > now}


def merge(found: dict[str, str], taken: dict[str, float], guests: Mapping[str, Guest]) -> None:
    """Add the guests to a frame's {picture: version} and {picture: taken}, in place; a photo
    the frame holds anyway keeps its own entry."""
    for gid, g in guests.items():
        if gid not in found:
            found[gid] = g.version
            taken[gid] = g.taken

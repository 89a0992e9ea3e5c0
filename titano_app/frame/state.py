"""The frame's state and event payloads (protocol §3), and when to publish the state. Pure.

Times are passed in: `now_ms` is a monotonic millisecond count (time.monotonic_ns() // 10**6;
never time.monotonic(), whose float loses precision after an hour on the board).
"""

import binascii
import json
import os

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Mapping
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

# Keys of the state besides "v" and the settings, in protocol order.
LIVE = (
    "picture",
    "shown_at",
    "light",
    "count",
    "pending",
    "sd_free_mb",
    "rev",
    "synced_at",
    "sync",
    "error",
    "rssi",
    "mem_free",
    "uptime",
    "version",
    "boot",
)
SYNC = ("idle", "syncing", "offline", "error")
TOUCH = ("next", "previous", "pause", "hold")
DETAIL_LIMIT = 200  # keeps an event small whatever went wrong


def boot_id() -> str:
    """8 random hex digits: this boot, told apart from another board's with the same id."""
    return binascii.hexlify(os.urandom(4)).decode()


def state_json(settings: Mapping[str, object], live: dict[str, object]) -> str:
    """The retained state: `settings` (settings.DEFAULTS keys) plus `live` values (LIVE keys).

    A LIVE key missing from `live` is null; an unknown key is a ValueError (a bug, not input).
    `live` without a `boot` gets one here, kept in it: the app's live values last one boot.
    """
    if "boot" not in live:
        live["boot"] = boot_id()
    for key in live:
        if key not in LIVE:
            raise ValueError("unknown state key " + repr(key))
    sync = live.get("sync", "idle")
    if sync not in SYNC:
        raise ValueError("sync state " + repr(sync))
    doc = {
        "v": 1,
        "paused": settings["paused"],
        "display": "ON" if settings["display"] else "OFF",
        "brightness": settings["brightness"],
        "auto_brightness": settings["auto_brightness"],
        "interval": settings["interval"],
    }
    for key in LIVE:
        doc[key] = live.get(key)
    doc["sync"] = sync
    return json.dumps(doc)


def touch_event(action: str, picture: str | None = None) -> str:
    """A touch; a long press (`hold`) names the picture it was on, for the bridge to act on."""
    if action not in TOUCH:
        raise ValueError("touch action " + repr(action))
    if picture is None:
        return json.dumps({"event": "touch", "action": action})
    return json.dumps({"event": "touch", "action": action, "picture": picture})


def shown_event(picture_id: str) -> str:
    return json.dumps({"event": "shown", "picture": picture_id})


def lower(low: int | None, value: int | None) -> int | None:
    """The lower of a running minimum and a new reading, either of which may be unknown."""
    if value is None or (low is not None and low <= value):
        return low
    return value


def synced_event(added: int, removed: int, pages: int) -> str:
    """A round ended: pictures added and removed, manifest pages read (changed ones only)."""
    return json.dumps({"event": "synced", "added": added, "removed": removed, "pages": pages})


def error_event(code: str, detail: str) -> str:
    return json.dumps({"event": "error", "code": code, "detail": detail[:DETAIL_LIMIT]})


class Pacer:
    """Publish the state on every change, at most once a second, at least every 5 minutes."""

    def __init__(self, min_gap_ms: int = 1000, max_gap_ms: int = 300000) -> None:
        self._min = min_gap_ms
        self._max = max_gap_ms
        self._last: int | None = None
        self._dirty = True

    def changed(self) -> None:
        """Something in the state changed: publish at the next chance."""
        self._dirty = True

    def due(self, now_ms: int) -> bool:
        if self._last is None:
            return True
        gap = now_ms - self._last
        return gap >= self._max or (self._dirty and gap >= self._min)

    def sent(self, now_ms: int) -> None:
        self._last = now_ms
        self._dirty = False

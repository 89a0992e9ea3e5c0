"""The SD card at boot: the store (pictures, retired pictures, sync record) opened on it, and the
settings file beside them, `<root>/settings.json` (the `settings` values a reboot keeps,
replaced via settings.json.tmp, a leftover of which the store removes at boot). Does file I/O.

The app imports this module (and with it store and retired) only once the MQTT page buffer is
allocated: a board that compiles the app from .py has the most room in one piece before the
card's code is compiled.
"""

import json

from . import files, settings
from .store import Store

try:  # noqa: SIM105 -- the board has no contextlib
    from .device import Device
except ImportError:  # annotations only; the board never evaluates them
    pass


def open_store(device: Device, keep_days: int) -> Store:
    """The device's card, booted: folders made, leftovers removed, pictures counted."""
    store = Store(
        device.mount(), device.statvfs, feed=device.feed, unix_time=device.unix_time,
        keep_days=keep_days,
    )  # fmt: skip
    store.boot()
    return store


def load_settings(root: str) -> dict[str, object]:
    """The saved settings; defaults for a missing or damaged file or value."""
    try:
        with open(root + "/settings.json", "rb") as f:
            doc = json.loads(f.read(1024).decode())
    except (OSError, ValueError):
        doc = None
    return settings.clean(doc)


def save_settings(root: str, values: dict[str, object]) -> None:
    data = json.dumps(settings.clean(values)).encode()
    files.write_atomic(root + "/settings.json", data)

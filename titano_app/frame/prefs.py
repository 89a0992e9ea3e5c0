"""The settings file on the card: `<root>/settings.json`, the `settings` values a reboot keeps,
replaced via settings.json.tmp (`files.write_atomic`; a leftover .tmp is removed at boot by the
store). Does file I/O.
"""

import json

from . import files, settings


def load(root: str) -> dict[str, object]:
    """The saved settings; defaults for a missing or damaged file or value."""
    try:
        with open(root + "/settings.json", "rb") as f:
            doc = json.loads(f.read(1024).decode())
    except (OSError, ValueError):
        doc = None
    return settings.clean(doc)


def save(root: str, values: dict[str, object]) -> None:
    data = json.dumps(settings.clean(values)).encode()
    files.write_atomic(root + "/settings.json", data)

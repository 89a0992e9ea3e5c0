"""The frame's own settings (what commands change and a reboot keeps): defaults, checks. Pure.

`store` persists them as a small JSON file on the card; here a settings value is a plain dict
with exactly the keys of DEFAULTS.
"""

DEFAULTS: dict[str, object] = {
    "brightness": 60,
    "interval": 60,
    "paused": False,
    "display": True,
    "auto_brightness": False,
}
# The commands that change a setting, and the setting each one changes.
COMMANDS = {
    "pause": "paused",
    "display": "display",
    "brightness": "brightness",
    "auto_brightness": "auto_brightness",
    "interval": "interval",
}
# Inclusive ranges of the integer settings (docs/protocol.md §4).
RANGES = {"brightness": (0, 100), "interval": (5, 86400)}


def valid(name: str, value: object) -> bool:
    """True when `value` is a legal value of setting `name`."""
    if name in RANGES:
        low, high = RANGES[name]
        return type(value) is int and low <= value <= high  # type() rules out True and False
    return name in DEFAULTS and type(value) is bool


def clean(doc: object) -> dict[str, object]:
    """Settings from a decoded file: each missing or bad value falls back to its default."""
    out = dict(DEFAULTS)
    if isinstance(doc, dict):
        for name in DEFAULTS:
            if valid(name, doc.get(name)):
                out[name] = doc[name]
    return out


def apply(settings: dict[str, object], command: str, value: object) -> bool:
    """Apply a setting command's action (`commands.parse`); True when something changed.

    Commands are named as in protocol §4 (`pause` sets `paused`). A brightness command also
    turns auto brightness off. Repeating a command changes nothing the second time.
    """
    name = COMMANDS.get(command, "")
    if not valid(name, value):
        raise ValueError(f"setting {command}: {repr(value)[:40]} is not allowed")
    changed = settings.get(name) != value
    settings[name] = value
    if name == "brightness" and settings.get("auto_brightness"):
        settings["auto_brightness"] = False
        changed = True
    return changed

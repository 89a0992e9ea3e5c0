"""The frame's settings.toml values (FRAME_ID, FRAME_SECRET, MQTT_HOST, MQTT_PORT, MQTT_BASE,
RETIRED_DAYS), checked. Pure: values come in through `getenv`; a bad one is a ValueError naming
key and value.
"""

from .topics import Topics

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Callable
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

KEEP_DAYS = 30  # RETIRED_DAYS: days a picture that left the manifest stays on the card
MAX_DAYS = 365  # a listed picture is looked for with one stat per day folder: keep them few


def setting(getenv: Callable[[str], str | None], name: str, default: str | None = None) -> str:
    value = getenv(name)
    if value is None or value == "":
        if default is None:
            raise ValueError(f"settings.toml: {name} is missing")
        return default
    return value


class Config:
    def __init__(self, getenv: Callable[[str], str | None]) -> None:
        self.secret = setting(getenv, "FRAME_SECRET")
        self.host = setting(getenv, "MQTT_HOST")
        port = setting(getenv, "MQTT_PORT", "1883")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("settings.toml: MQTT_PORT " + repr(port) + " is not a port number")
        self.port = int(port)
        days = setting(getenv, "RETIRED_DAYS", str(KEEP_DAYS))
        if not days.isdigit() or not 1 <= int(days) <= MAX_DAYS:
            bad = "settings.toml: RETIRED_DAYS " + repr(days)
            raise ValueError(bad + " is not 1 to " + str(MAX_DAYS) + " days")
        self.keep_days = int(days)
        self.topics = Topics(
            setting(getenv, "FRAME_ID"), setting(getenv, "MQTT_BASE", "titanoframe")
        )

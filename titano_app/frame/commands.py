"""Commands from `<base>/<frame>/cmd/<command>` (protocol §4): payload in, action out. Pure.

`parse` returns (name, value): value None for next / previous / sync, a bool for ON/OFF
commands, an int for brightness and interval, a picture id for show. Anything else raises
CommandError (event code `bad_command`) and must change nothing.

pause, display, brightness, auto_brightness and interval change a setting (`settings.apply`;
the same value twice changes nothing); next and previous move one slide each time; show draws
the picture now, or once it is downloaded (a photo sent to the frame); like and hide are the
bridge's (the frame does nothing); notice shows a small icon for a while.
"""

from .errors import FrameError
from .manifest import valid_id
from .settings import RANGES

MAX_PAYLOAD = 256
NAMES = (
    "next",
    "previous",
    "pause",
    "display",
    "brightness",
    "auto_brightness",
    "interval",
    "show",
    "sync",
    "like",
    "hide",
    "notice",
)
# Commands the bridge acts on (in Immich); the frame takes them without doing anything.
BRIDGE = ("like", "hide")
# The words of `notice`, each drawn as its own icon (icons.SHAPES) by the device.
NOTICES = ("liked", "unliked", "hidden", "error")
_SWITCHES = ("pause", "display", "auto_brightness")
_DIGITS = "0123456789"


class CommandError(FrameError):
    """A command the frame will not run (event code `bad_command`)."""

    def __init__(self, detail: str) -> None:
        super().__init__("bad_command", detail)


def _text(payload: bytes | bytearray | memoryview | str) -> str:
    if isinstance(payload, str):
        return payload.strip()
    try:
        return bytes(payload).decode().strip()
    except ValueError:  # bad UTF-8
        raise CommandError("payload is not UTF-8 text") from None


def _number(name: str, text: str) -> int:
    dot = text.find(".")  # Home Assistant may send 60.0
    whole, fraction = (text, "") if dot < 0 else (text[:dot], text[dot + 1 :])
    if not whole or whole.strip(_DIGITS) or fraction.strip("0") or len(whole) > 9:
        raise CommandError(f"{name}: {repr(text)[:40]} is not a whole number")
    value = int(whole)
    low, high = RANGES[name]
    if not low <= value <= high:
        raise CommandError(f"{name}: {value} is not within {low}..{high}")
    return value


def parse(name: str, payload: bytes | bytearray | memoryview | str) -> tuple[str, object]:
    """The action for command `name` with `payload`; raises CommandError."""
    if name not in NAMES:
        raise CommandError(f"unknown command {repr(name)[:40]}")
    size = len(payload.encode()) if isinstance(payload, str) else len(payload)
    if size > MAX_PAYLOAD:
        raise CommandError(f"{name}: payload over {MAX_PAYLOAD} bytes")
    if name in ("next", "previous", "sync") or name in BRIDGE:
        return name, None
    text = _text(payload)
    if name in _SWITCHES:
        word = text.upper()
        if word not in ("ON", "OFF"):
            raise CommandError(f"{name}: {repr(text)[:40]} is not ON or OFF")
        return name, word == "ON"
    if name == "notice":
        if text not in NOTICES:
            raise CommandError(f"notice: {repr(text)[:40]} is not one of {', '.join(NOTICES)}")
        return name, text
    if name == "show":
        picture_id = text.lower()
        if not valid_id(picture_id):
            raise CommandError(f"show: {repr(text)[:80]} is not a picture id")
        return name, picture_id
    return name, _number(name, text)

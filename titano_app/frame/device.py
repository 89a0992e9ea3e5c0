"""What the app asks of the hardware: the board's `hw.Board` and the simulator's stand-in.

No I/O here: every method is implemented by a subclass. Keeping the app on this small surface is
what lets the same app code run on the PyPortal Titano and on CPython.
"""

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Sequence
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass


class Device:
    """The hardware seam. `pool` is a socket pool, `ssl_context` its TLS context (or None)."""

    pool: object = None
    ssl_context: object = None

    def getenv(self, name: str) -> str | None:
        """A value from settings.toml (strings, as os.getenv gives them)."""
        raise NotImplementedError

    def mount(self) -> str:
        """Mount the SD card; returns its root folder. Raises OSError without a card."""
        raise NotImplementedError

    def statvfs(self, path: str) -> Sequence[int]:
        raise NotImplementedError

    def show(self, path: str) -> None:
        """Draw a BMP from the card full screen. Raises OSError for a file it cannot read."""
        raise NotImplementedError

    def offline(self, flag: bool) -> None:
        """Show or hide the small offline icon over the picture."""
        raise NotImplementedError

    def notice(self, word: str | None) -> None:
        """Show the small icon for a `notice` word (commands.NOTICES) over the picture, or
        take it away (None)."""
        raise NotImplementedError

    def touching(self) -> bool:
        """Whether the screen is touched now (the press `touch` reported is still down)."""
        raise NotImplementedError

    def backlight(self, level: float) -> None:
        """Backlight 0.0 (off) to 1.0."""
        raise NotImplementedError

    def light(self) -> int:
        """The light sensor, 0-65535."""
        raise NotImplementedError

    def touch(self) -> int | None:
        """The x position (0-479) of a new touch, once per press; None otherwise."""
        raise NotImplementedError

    def feed(self) -> None:
        """Feed the watchdog."""
        raise NotImplementedError

    def connect_wifi(self) -> bool:
        """Join the network (quickly: the watchdog is running); True when connected."""
        raise NotImplementedError

    def rssi(self) -> int | None:
        raise NotImplementedError

    def mem_free(self) -> int | None:
        raise NotImplementedError

    def unix_time(self) -> int | None:
        """Seconds since 1970, None while the clock is not known (the board's, before NTP)."""
        raise NotImplementedError

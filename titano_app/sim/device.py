"""The simulator's stand-in for the board (`frame.device.Device`). Does file and network I/O.

- settings: a dict (read from a settings.toml by `__main__`).
- SD card: a folder; `statvfs` can be replaced to simulate a small or full card.
- screen: `screen.Screen`, a PNG rewritten after every draw.
- light level and touches: set `light` / call `press(x)` (a tap) or `hold(x)` then `release()`
  (a long press) in-process, or append lines to the control file: `light <0-65535>`,
  `touch <x 0-479>`, `hold <x>`, `release 0`, `wifi off`, `wifi on`.
- notices: the icon shown is `screen.notice_word`, every one shown is in `notices`.
- network: a `pool.FlakyPool` (CPython sockets that can fail on demand).
- watchdog: `feed()` counts feeds and keeps the longest gap between two of them on `clock`
  (milliseconds; the app's clock when a test passes the same one), which must stay under the
  board's 16 s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from titano_app.frame.device import Device
from titano_app.sim.pool import FlakyPool
from titano_app.sim.screen import Screen


class SimDevice(Device):
    def __init__(
        self,
        settings: dict[str, str],
        card: Path,
        png: Path,
        control: Path | None = None,
        pool: FlakyPool | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.settings = dict(settings)
        self.card = card
        self.screen = Screen(png)
        self.control = control
        self.pool = pool or FlakyPool()
        self.ssl_context = None
        self.light_level = 20000
        self.touches: list[int] = []
        self.holding = False
        self.notices: list[str | None] = []
        self.feeds = 0
        self.clock = clock or (lambda: time.monotonic_ns() // 1000000)
        self._epoch = time.time() - self.clock() / 1000
        self.last_feed: int | None = None
        self.max_feed_gap = 0  # ms
        self.wifi_tries = 0
        self.statvfs_hook: Callable[[str], Sequence[int]] | None = None
        self._control_offset = 0
        self.shown: list[str] = []  # every path drawn, in order

    @property
    def flaky(self) -> FlakyPool:
        assert isinstance(self.pool, FlakyPool)
        return self.pool

    def getenv(self, name: str) -> str | None:
        return self.settings.get(name)

    def mount(self) -> str:
        self.card.mkdir(parents=True, exist_ok=True)
        return str(self.card)

    def statvfs(self, path: str) -> Sequence[int]:
        if self.statvfs_hook is not None:
            return self.statvfs_hook(path)
        return os.statvfs(path)

    def show(self, path: str) -> None:
        self.screen.show(path)
        self.shown.append(path)

    def offline(self, flag: bool) -> None:
        self.screen.offline(flag)

    def backlight(self, level: float) -> None:
        self.screen.backlight(level)

    def notice(self, word: str | None) -> None:
        self.screen.notice(word)
        self.notices.append(word)

    def press(self, x: int) -> None:
        self.touches.append(x)

    def hold(self, x: int) -> None:
        """A finger down at `x` that stays until `release()`."""
        self.touches.append(x)
        self.holding = True

    def release(self) -> None:
        self.holding = False

    def touching(self) -> bool:
        return self.holding and not self.touches

    def light(self) -> int:
        self._read_control()
        return self.light_level

    def touch(self) -> int | None:
        self._read_control()
        return self.touches.pop(0) if self.touches else None

    def _read_control(self) -> None:
        if self.control is None or not self.control.exists():
            return
        with open(self.control, "rb") as f:
            f.seek(self._control_offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # only whole lines
        self._control_offset += end
        for line in data[:end].decode(errors="replace").splitlines():
            self._control_line(line.split())

    def _control_line(self, words: list[str]) -> None:
        if len(words) != 2:
            return
        what, value = words
        if what == "light" and value.isdigit():
            self.light_level = min(65535, int(value))
        elif what == "touch" and value.isdigit():
            self.touches.append(min(479, int(value)))
        elif what == "hold" and value.isdigit():
            self.hold(min(479, int(value)))
        elif what == "release":
            self.release()
        elif what == "wifi":
            self.flaky.down = value == "off"

    def feed(self) -> None:
        self.feeds += 1
        now = self.clock()
        if self.last_feed is not None:
            self.max_feed_gap = max(self.max_feed_gap, now - self.last_feed)
        self.last_feed = now

    def connect_wifi(self) -> bool:
        self.wifi_tries += 1
        self._read_control()
        return not self.flaky.down

    def rssi(self) -> int | None:
        return None if self.flaky.down else -55

    def mem_free(self) -> int | None:
        return None

    def unix_time(self) -> int:
        """Wall time that moves with `clock`: a test that moves the clock a day on moves the
        date a day on too."""
        return int(self._epoch + self.clock() / 1000)

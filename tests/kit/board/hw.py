"""A stand-in for `frame/hw.py` inside CircuitPython's unix VM: the one hardware module of the
app, replaced so the real app runs on the real interpreter in tests. Does file and socket I/O.

Everything but the hardware is the board's: the app and its libraries as `make bundle` lays them
out, `cpsocketpool` (sockets with the board's semantics) as the network, a folder as the SD card.
The test drives and watches it through:

- the environment: settings.toml's values (the VM's `os.getenv` reads the environment, as the
  board's reads settings.toml), `TITANO_CARD` (the card's folder), `TITANO_CARD_BYTES` (its
  size; the real folder's free space without it), `TITANO_CONTROL` (a file of lines `touch <x>`
  (a tap), `hold <x>` and `release 0` (a long press), `light <0-65535>`, `wifi off`,
  `wifi on`, read as the app polls touch and light);
- lines on standard output that start with "@@": `@@show <path> <bytes>` for each picture drawn
  (after the checks `displayio.OnDiskBitmap` makes), `@@low <bytes>` when the free heap the app
  reads (`mem_free`, at the start of each tick, right after the main loop's collection) is the
  lowest yet by another LOW_STEP bytes, `@@feeds <n>` every FEEDS_SAID watchdog feeds, `@@dog
  <ms>` for a gap between two feeds longer than the board's 16 s watchdog, `@@offline 0|1` and
  `@@backlight <percent>` and `@@notice <word>|-` (the feedback icon shown, or none) as the
  screen changes; and once, at the first tick, what
  `micropython.mem_info()` prints (its "max free sz" is the largest free block, in 16-byte
  blocks: what fragmentation leaves of the free heap).
"""

import gc
import os
import struct
import time

import cpsocketpool
import micropython

from .device import Device

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Sequence
except ImportError:  # no collections.abc here either; annotations are never evaluated
    pass

WATCHDOG_MS = 16000
LOW_STEP = 256  # bytes
FEEDS_SAID = 500


def _ms() -> int:
    return time.monotonic_ns() // 1000000


class Pool(cpsocketpool.SocketPool):  # type: ignore[misc]
    """The board's pool, with the Wi-Fi that can be switched off: then no socket opens."""

    up = True

    def socket(self, *args: int) -> object:
        if not self.up:
            raise OSError(113)  # EHOSTUNREACH, as the ESP32 answers with no network
        return super().socket(*args)


class Board(Device):
    def __init__(self) -> None:
        self.pool = self._pool = Pool()
        self.ssl_context = None
        self._card = os.getenv("TITANO_CARD") or "card"
        size = os.getenv("TITANO_CARD_BYTES")
        self._card_bytes = int(size) if size else 0
        self._control = os.getenv("TITANO_CONTROL")
        self._control_at = 0
        self._touches: list[int] = []
        self._holding = False
        self._light = 20000
        self._wifi = True
        self._fed = _ms()
        self._feeds = 0
        self._told = False
        self._low = self._said = gc.mem_free()  # type: ignore[attr-defined]

    def getenv(self, name: str) -> str | None:
        return os.getenv(name)

    def mount(self) -> str:
        try:  # noqa: SIM105 -- CircuitPython has no contextlib
            os.mkdir(self._card)
        except OSError:  # already there
            pass
        return self._card

    def statvfs(self, path: str) -> Sequence[int]:
        real = os.statvfs(path)
        if not self._card_bytes:
            return real
        block = real[1] or real[0]
        free = max(0, self._card_bytes - _used(self._card))
        return (block, block, self._card_bytes // block, free // block, free // block)

    def show(self, path: str) -> None:
        with open(path, "rb") as f:
            head = f.read(54)
        size = os.stat(path)[6]
        # what OnDiskBitmap checks before it draws: the signature and a size it can read
        if len(head) < 54 or head[:2] != b"BM" or struct.unpack("<I", head[2:6])[0] > size:
            raise OSError("cannot draw " + path)
        print("@@show", path, size)

    def offline(self, flag: bool) -> None:
        print("@@offline", 1 if flag else 0)

    def notice(self, word: str | None) -> None:
        print("@@notice", word or "-")

    def touching(self) -> bool:
        return self._holding and not self._touches

    def backlight(self, level: float) -> None:
        print("@@backlight", int(level * 100))

    def light(self) -> int:
        self._read_control()
        return self._light

    def touch(self) -> int | None:
        self._read_control()
        return self._touches.pop(0) if self._touches else None

    def _read_control(self) -> None:
        if not self._control:
            return
        try:
            with open(self._control, "rb") as f:
                f.seek(self._control_at)
                data = f.read(256)
        except OSError:
            return
        end = data.rfind(b"\n") + 1  # only whole lines
        self._control_at += end
        for line in data[:end].decode().split("\n"):
            self._control_line(line.split())

    def _control_line(self, words: list[str]) -> None:
        if len(words) != 2:
            return
        what, value = words
        if what == "touch":
            self._touches.append(int(value))
        elif what == "hold":
            self._touches.append(int(value))
            self._holding = True
        elif what == "release":
            self._holding = False
        elif what == "light":
            self._light = int(value)
        elif what == "wifi":
            self._wifi = self._pool.up = value == "on"

    def feed(self) -> None:
        now = _ms()
        if now - self._fed > WATCHDOG_MS:
            print("@@dog", now - self._fed)
        self._fed = now
        self._feeds += 1
        if self._feeds % FEEDS_SAID == 0:
            print("@@feeds", self._feeds)

    def connect_wifi(self) -> bool:
        self._read_control()
        return self._wifi

    def rssi(self) -> int | None:
        return -55 if self._wifi else None

    def mem_free(self) -> int | None:
        if self._feeds and not self._told:  # the first tick: how the heap looks once booted
            self._told = True
            micropython.mem_info()  # prints "... max free sz: <blocks of 16 bytes>"
        free = int(gc.mem_free())  # type: ignore[attr-defined]
        if free < self._low:
            self._low = free
            if self._said - free >= LOW_STEP:
                self._said = free
                print("@@low", free)
        return free

    def unix_time(self) -> int | None:
        return int(time.time())


def _used(root: str) -> int:
    """Bytes in the files below `root` (the card's pictures, downloads and records)."""
    total = 0
    for entry in os.ilistdir(root):  # type: ignore[attr-defined]
        path = root + "/" + entry[0]
        if entry[1] == 0x4000:  # a folder
            total += _used(path)
        else:
            total += os.stat(path)[6]
    return total

"""The PyPortal Titano's hardware behind `device.Device`: SD card, display, backlight, light
sensor, touch screen, watchdog, clock and the ESP32 Wi-Fi co-processor. Does hardware I/O; the
only module of the app that imports hardware modules (the simulator stands in for it).

The board has no battery-backed clock: after Wi-Fi connects, the ESP32's NTP time sets the RTC
(`time.time()` then follows it). Until that works, `unix_time()` is None and is tried again
at most every CLOCK_RETRY_MS.
"""

import gc
import os
import time

import adafruit_connection_manager
import adafruit_touchscreen
import analogio
import board
import busio
import digitalio
import displayio
import microcontroller
import rtc
import sdcardio
import storage
from adafruit_esp32spi import adafruit_esp32spi
from watchdog import WatchDogMode

from .device import Device

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Sequence
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

ROOT = "/sd"
WATCHDOG_S = 16.0
CALIBRATION = ((5200, 59000), (5800, 57000))
CLOCK_RETRY_MS = 10000
SET_AFTER = 1600000000  # a time before September 2020 is the ESP32's clock before NTP


def _calibration(text: str | None) -> tuple[tuple[int, int], tuple[int, int]]:
    """TOUCH_CALIBRATION from settings.toml, "x0,x1,y0,y1"; the usual values without it."""
    if not text:
        return CALIBRATION
    v = [int(n) for n in text.split(",")]
    if len(v) != 4:
        raise ValueError("settings.toml: TOUCH_CALIBRATION " + repr(text) + " needs 4 numbers")
    return ((v[0], v[1]), (v[2], v[3]))


class Board(Device):
    def __init__(self) -> None:
        dog = microcontroller.watchdog
        assert dog is not None  # the Titano has one
        dog.timeout = WATCHDOG_S
        dog.mode = WatchDogMode.RESET
        self._dog = dog
        self._spi: busio.SPI = board.SPI()
        self._display = board.DISPLAY
        self._group = displayio.Group()
        self._icon = self._offline_icon()
        self._display.root_group = self._group
        self._light = analogio.AnalogIn(board.LIGHT)
        pins = (board.TOUCH_XL, board.TOUCH_XR, board.TOUCH_YD, board.TOUCH_YU)
        self._touch = adafruit_touchscreen.Touchscreen(
            *pins, calibration=_calibration(os.getenv("TOUCH_CALIBRATION")), size=(480, 320)
        )
        self._pressed = False
        self._up = 0  # readings without a touch since the last with one
        self._notice: displayio.TileGrid | None = None
        self._clock_set = False
        self._clock_tried = -CLOCK_RETRY_MS
        cs = digitalio.DigitalInOut(board.ESP_CS)
        busy = digitalio.DigitalInOut(board.ESP_BUSY)
        reset = digitalio.DigitalInOut(board.ESP_RESET)
        self._esp = adafruit_esp32spi.ESP_SPIcontrol(self._spi, cs, busy, reset)
        self.pool = adafruit_connection_manager.get_radio_socketpool(self._esp)
        self.ssl_context = adafruit_connection_manager.get_radio_ssl_context(self._esp)

    def _offline_icon(self) -> displayio.TileGrid:
        bitmap = displayio.Bitmap(12, 12, 2)
        for i in range(12):  # a red cross in the corner
            bitmap[i, i] = 1
            bitmap[i, 11 - i] = 1
        palette = displayio.Palette(2)
        palette[1] = 0xFF3030
        palette.make_transparent(0)
        return displayio.TileGrid(bitmap, pixel_shader=palette, x=462, y=6)

    def getenv(self, name: str) -> str | None:
        value = os.getenv(name)
        return None if value is None else str(value)

    def mount(self) -> str:
        self._card = sdcardio.SDCard(self._spi, board.SD_CS)
        storage.mount(storage.VfsFat(self._card), ROOT)
        return ROOT

    def statvfs(self, path: str) -> Sequence[int]:
        return os.statvfs(path)

    def show(self, path: str) -> None:
        self._file = None
        gc.collect()
        f = open(path, "rb")  # noqa: SIM115 -- OnDiskBitmap reads it for as long as it is shown
        try:
            bitmap = displayio.OnDiskBitmap(f)
        except ValueError as e:  # a damaged file: the app expects OSError, as from open()
            f.close()
            raise OSError("cannot draw " + path + ": " + str(e)) from None
        grid = displayio.TileGrid(bitmap, pixel_shader=bitmap.pixel_shader)
        keep = [g for g in (self._icon, self._notice) if g is not None and g in self._group]
        while len(self._group):
            self._group.pop()
        self._group.append(grid)
        for g in keep:
            self._group.append(g)
        self._file = f

    def notice(self, word: str | None) -> None:
        if self._notice is not None and self._notice in self._group:
            self._group.remove(self._notice)
        self._notice = None
        if word is None:
            return
        from . import icons  # only once a notice comes: most frames never get one

        width, height = icons.size(word)
        bitmap = displayio.Bitmap(width, height, 2)
        icons.paint(bitmap, word)
        palette = displayio.Palette(2)
        palette[1] = icons.color(word)
        self._notice = displayio.TileGrid(bitmap, pixel_shader=palette, x=icons.X, y=icons.Y)
        self._group.append(self._notice)

    def offline(self, flag: bool) -> None:
        shown = self._icon in self._group
        if flag and not shown:
            self._group.append(self._icon)
        elif shown and not flag:
            self._group.remove(self._icon)

    def backlight(self, level: float) -> None:
        self._display.brightness = max(0.0, min(1.0, level))

    def light(self) -> int:
        return int(self._light.value)

    def touch(self) -> int | None:
        point = self._touch.touch_point
        if point is None:
            # A resistive screen misses a reading now and then under a held finger: two in a
            # row end the press, so a long press is not cut into taps.
            self._up += 1
            if self._up >= 2:
                self._pressed = False
            return None
        self._up = 0
        if self._pressed:
            return None
        self._pressed = True
        return int(point[0])

    def touching(self) -> bool:
        return self._pressed

    def feed(self) -> None:
        self._dog.feed()

    def connect_wifi(self) -> bool:
        try:  # a status read is an SPI exchange with the ESP32, and can fail like a connect
            if self._esp.is_connected:
                return True
        except (OSError, RuntimeError, ConnectionError):
            return False
        ssid = os.getenv("CIRCUITPY_WIFI_SSID")
        password = os.getenv("CIRCUITPY_WIFI_PASSWORD")
        if not ssid:
            raise ValueError("settings.toml: CIRCUITPY_WIFI_SSID is missing")
        self.feed()
        try:  # one quick try: the app calls again with back-off, feeding the watchdog between
            self._esp.connect_AP(ssid, password or "", timeout_s=8)
        except (OSError, RuntimeError, ConnectionError):
            return False
        finally:
            self.feed()
        if not self._clock_set:
            self._set_clock()
        return True

    def _set_clock(self) -> bool:
        """Set the RTC from the ESP32's NTP time; False while it has none."""
        self._clock_tried = time.monotonic_ns() // 1000000
        try:
            got = self._esp.get_time()  # (seconds,) from the library, an int in some versions
            seconds = int(got[0] if isinstance(got, tuple) else got)
        except (OSError, RuntimeError, ValueError, TypeError):
            return False
        if seconds < SET_AFTER:
            return False
        rtc.RTC().datetime = time.localtime(seconds)
        self._clock_set = True
        return True

    def rssi(self) -> int | None:
        try:
            return int(self._esp.ap_info.rssi)
        except (OSError, RuntimeError, AttributeError):
            return None

    def mem_free(self) -> int | None:
        return int(gc.mem_free())  # type: ignore[attr-defined]

    def unix_time(self) -> int | None:
        if not self._clock_set:
            waited = time.monotonic_ns() // 1000000 - self._clock_tried
            if waited < CLOCK_RETRY_MS or not self._set_clock():
                return None
        return int(time.time())

"""The screen's light: the brightness setting, the display switch, and auto brightness from the
light sensor. Does I/O through the device (the backlight and the light sensor).
"""

from .level import AutoLevel

try:  # noqa: SIM105 -- the board has no contextlib
    from .device import Device
except ImportError:  # annotations only; the board never evaluates them
    pass

LIGHT_MS = 1000  # the light sensor is read this often


class Backlight:
    def __init__(self, device: Device) -> None:
        self._device = device
        self.auto = AutoLevel()
        self._light_ms = -LIGHT_MS

    def apply(self, settings: dict[str, object]) -> None:
        """The backlight as the settings say: the brightness, or dark with the display off."""
        level = int(settings["brightness"]) / 100 if settings["display"] else 0.0  # type: ignore[call-overload]
        self._device.backlight(level)

    def follow(self, settings: dict[str, object], live: dict[str, object], now: int) -> bool:
        """Read the light sensor when due (into `live`); True when auto brightness changed the
        brightness setting (and the backlight)."""
        if now - self._light_ms < LIGHT_MS:
            return False
        self._light_ms = now
        reading = self._device.light()
        live["light"] = reading
        level = self.auto.update(reading)
        if settings["auto_brightness"] and level is not None:
            settings["brightness"] = level
            self.apply(settings)
            return True
        return False

"""The simulated panel: Blinka displayio draws a Group on a fake 480x320 RGB565 display, and
the result (dimmed by the backlight, as an eye would see it) is saved as a PNG. Does file I/O.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import busdisplay  # noqa: F401 -- displayio's core imports it; importing it first avoids a cycle
import displayio
from displayio._area import Area  # type: ignore[import-untyped]
from displayio._displaycore import _DisplayCore  # type: ignore[import-untyped]
from PIL import Image, ImageEnhance

from titano_app.frame import icons

WIDTH, HEIGHT = 480, 320


def _core() -> _DisplayCore:
    # bus None: nothing is sent anywhere, fill_area alone renders the group into a buffer
    return _DisplayCore(
        None, WIDTH, HEIGHT, WIDTH, HEIGHT, 0, 0, 0, 16, False, False, 2,
        False, False, 0x2A, 0x2B, None, None, False, False, False, False,
    )  # fmt: skip


def offline_icon() -> displayio.TileGrid:
    """The same red cross the board draws in the corner when the network is gone."""
    bitmap = displayio.Bitmap(12, 12, 2)
    for i in range(12):
        bitmap[i, i] = 1
        bitmap[i, 11 - i] = 1
    palette = displayio.Palette(2)
    palette[1] = 0xFF3030
    palette.make_transparent(0)
    return displayio.TileGrid(bitmap, pixel_shader=palette, x=462, y=6)


def notice_icon(word: str) -> displayio.TileGrid:
    """The icon the board draws for a `notice` word, from the same shapes (frame.icons)."""
    width, height = icons.size(word)
    bitmap = displayio.Bitmap(width, height, 2)
    icons.paint(bitmap, word)
    palette = displayio.Palette(2)
    palette[1] = icons.color(word)
    return displayio.TileGrid(bitmap, pixel_shader=palette, x=icons.X, y=icons.Y)


class Screen:
    """A picture, the offline and notice icons and the backlight; `save()` writes what the
    panel shows."""

    def __init__(self, png: Path) -> None:
        self.png = png
        self.brightness = 1.0
        self.draws = 0
        self._core = _core()
        self._group = displayio.Group()
        self._core.set_root_group(self._group)
        self._icon = offline_icon()
        self._notice: displayio.TileGrid | None = None
        self.notice_word: str | None = None  # the notice icon shown now
        self._file: BinaryIO | None = None

    def show(self, path: str) -> None:
        f = open(path, "rb")  # noqa: SIM115 -- OnDiskBitmap reads it while it is shown
        try:
            bitmap = displayio.OnDiskBitmap(f)
        except Exception as e:  # Blinka raises ValueError & co for a bad file; the board OSError
            f.close()
            raise OSError(f"cannot draw {path}: {e}") from None
        keep = [g for g in (self._icon, self._notice) if g is not None and g in self._group]
        while len(self._group):
            self._group.pop()
        self._group.append(displayio.TileGrid(bitmap, pixel_shader=bitmap.pixel_shader))
        for g in keep:
            self._group.append(g)
        if self._file is not None:
            self._file.close()
        self._file = f
        self.save()

    def offline(self, flag: bool) -> None:
        shown = self._icon in self._group
        if flag != shown:
            if flag:
                self._group.append(self._icon)
            else:
                self._group.remove(self._icon)
            self.save()

    def notice(self, word: str | None) -> None:
        if self._notice is not None and self._notice in self._group:
            self._group.remove(self._notice)
        self._notice = None if word is None else notice_icon(word)
        if self._notice is not None:
            self._group.append(self._notice)
        self.notice_word = word
        self.save()

    def backlight(self, level: float) -> None:
        if level != self.brightness:
            self.brightness = level
            self.save()

    def image(self) -> Image.Image:
        """What the panel holds, before the backlight."""
        buffer = memoryview(bytearray(WIDTH * HEIGHT * 2 + 4)).cast("I")
        mask = memoryview(bytearray((WIDTH * HEIGHT // 32 + 1) * 4)).cast("I")
        self._core.fill_area(Area(0, 0, WIDTH, HEIGHT), mask, buffer)
        raw = buffer.tobytes()[: WIDTH * HEIGHT * 2]
        return Image.frombytes("RGB", (WIDTH, HEIGHT), raw, "raw", "BGR;16")

    def save(self) -> None:
        """Write the PNG (replacing it whole, so a reader never sees half a file)."""
        img = ImageEnhance.Brightness(self.image()).enhance(self.brightness)
        tmp = self.png.with_name(self.png.name + ".tmp")
        img.save(tmp, "PNG")
        os.replace(tmp, self.png)
        self.draws += 1

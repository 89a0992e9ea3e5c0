"""Auto brightness: the light sensor's reading in, a backlight level out. Pure.

The reading is smoothed (an exponential average, so a hand passing by does nothing) and the
level only moves when it would change by HYSTERESIS or more (so the backlight does not flicker
between two steps at dusk).
"""

LOW = 5  # percent in the dark: dim, still readable
HIGH = 100
HYSTERESIS = 6  # percent
SMOOTHING = 8  # each reading moves the average 1/SMOOTHING of the way


class AutoLevel:
    def __init__(self) -> None:
        self.average = -1
        self.level = -1

    def update(self, light: int) -> int | None:
        """Take a reading (0-65535); the new level in percent when it should change, else None."""
        if self.average < 0:
            self.average = light
        else:
            self.average += (light - self.average) // SMOOTHING
        target = LOW + (HIGH - LOW) * self.average // 65535
        if self.level < 0 or abs(target - self.level) >= HYSTERESIS:
            self.level = target
            return target
        return None


def touch_action(x: int, width: int = 480) -> str:
    """What a touch at `x` does: left third previous, right third next, middle pause."""
    if x < width // 3:
        return "previous"
    if x >= width - width // 3:
        return "next"
    return "pause"

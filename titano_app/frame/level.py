"""The sensors' readings: auto brightness (the light sensor's reading in, a backlight level
out) and the touch screen's presses (`Touch`). Pure: readings and `now_ms` in, actions out.

The reading is smoothed (an exponential average, so a hand passing by does nothing) and the
level only moves when it would change by HYSTERESIS or more (so the backlight does not flicker
between two steps at dusk).
"""

LOW = 5  # percent in the dark: dim, still readable
HIGH = 100
HYSTERESIS = 6  # percent
SMOOTHING = 8  # each reading moves the average 1/SMOOTHING of the way
HOLD_MS = 1000  # a press held this long is a long press
HOLD = "hold"


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


class Touch:
    """A tap acts on the third it touched, when the finger lifts (so a press held longer is
    never also a tap); a long press acts once, as soon as it has lasted HOLD_MS, on the
    picture shown, and its release does nothing more. (Here, not in a module of its own: a
    module costs the board heap at boot.)"""

    def __init__(self) -> None:
        self.x = -1  # where the press now down began; -1: none
        self.since = 0
        self.held = False

    def update(self, x: int | None, down: bool, now_ms: int) -> str | None:
        """`x`: where a new press began (else None); `down`: the screen is still touched.
        Returns `previous`, `next`, `pause` (a tap), `hold` (a long press) or None."""
        if x is not None:
            self.x, self.since, self.held = x, now_ms, False
        if self.x < 0:
            return None
        if down:
            if not self.held and now_ms - self.since >= HOLD_MS:
                self.held = True
                return HOLD
            return None
        x, self.x = self.x, -1
        return None if self.held else touch_action(x)

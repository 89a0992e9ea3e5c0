"""The touch screen's presses: a tap acts on the third it touched, a long press (held for
HOLD_MS) on the picture shown. Pure: readings and `now_ms` in, an action out.

A tap acts when the finger lifts, so that a press held longer is never also a tap; a long
press acts once, as soon as it has lasted HOLD_MS, and its release does nothing more.
"""

from .level import touch_action

HOLD_MS = 1000
HOLD = "hold"


class Touch:
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

"""Counted log lines: an event that can repeat thousands of times a second is logged at most
once per interval, with how often it happened. Writes only through the logger it is given.

The first event of a quiet spell is logged at once, so an operator sees a problem start; later
ones are counted and reported together when the interval has passed, by the next event or by
the timer `later` sets. Without this, every refused `accept()` during a connection flood is a
traceback of its own: 800,000 of them in 100 s filled a disk before anything else broke.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

Later = Callable[[float, Callable[[], None]], object]


class Tally:
    """One kind of event: `note(detail)` counts it; the log says `<what>: <detail>` for a lone
    event, `<what>: N times in S s, the last: <detail>` for several."""

    def __init__(
        self,
        logger: logging.Logger,
        what: str,
        interval: float,
        level: int = logging.WARNING,
        later: Later | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger, self.what, self.interval, self.level = logger, what, interval, level
        self.clock, self.later = clock, later
        self.total = 0  # every event ever noted, for /metrics
        self._count = 0
        self._detail = ""
        self._since = 0.0  # when the first event not yet logged happened
        self._next = float("-inf")  # when the next line may be written
        self._timer = False

    def note(self, detail: str = "") -> None:
        now = self.clock()
        self.total += 1
        self._count += 1
        self._detail = detail
        if self._count == 1:
            self._since = now
        if now >= self._next:
            self.flush()
        elif not self._timer and self.later is not None:
            self._timer = True
            self.later(self._next - now, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = False
        self.flush()

    def flush(self) -> None:
        """Log what was counted since the last line, if anything; the interval starts again."""
        if not self._count:
            return
        now = self.clock()
        if self._count == 1:
            self.logger.log(self.level, "%s: %s", self.what, self._detail or "once")
        else:
            span = max(now - self._since, 0.0)
            last = f", the last: {self._detail}" if self._detail else ""
            self.logger.log(
                self.level, "%s: %d times in %.0f s%s", self.what, self._count, span, last
            )
        self._count = 0
        self._next = now + self.interval

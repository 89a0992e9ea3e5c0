"""Frame schedules: which scheduled commands fell due between two instants. Pure, no I/O.

A schedule entry (config `frames.<id>.schedule`) says "at HH:MM local time, on these days, send
these commands". The bridge calls `due(entries, last, now)` on every tick with the instant of
the previous tick and publishes what comes back, in order, on `<base>/<frame>/cmd/<command>`.

Rules:

- Local time is the time zone of `now` (the bridge passes `now` in config `bridge.timezone`);
  `days` are the local weekdays the wall-clock time falls on.
- An entry is due when its instant lies in (last, now]: never twice for one occurrence, and
  not at all when `last` is not before `now` (a clock that stepped back).
- Daylight saving. A wall time skipped by a spring-forward change fires once, at the instant
  the clocks jump (so it stays in order with the entries around it). A wall time that happens
  twice when clocks go back fires once, at its first occurrence.
- Current state. `current(entries, now)` is what the schedule says now: each command with the
  payload of its latest occurrence up to `now` (sent again when a frame comes online).
- Long gaps. Every scheduled command sets a state (display, brightness, ...), so after a gap
  (the bridge asleep for a day) replaying every missed occurrence would only flicker the frame.
  Instead each command is sent once, with the payload of its latest due occurrence, placed
  where that occurrence falls. Within one instant, entries keep their config order and commands
  their order inside the entry, and a later command of the same name wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from common.config import ScheduleEntry

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Each entry repeats at least weekly, so looking back 8 local days covers any gap.
LOOKBACK_DAYS = 8


def _gap_end(wall: datetime, tz: tzinfo) -> datetime:
    """The instant the clocks jump over a spring-forward gap containing the wall time."""
    # For a nonexistent wall time, fold=1 reads it with the offset from after the jump and
    # lands before the jump; fold=0 uses the offset from before and lands after it.
    low = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    high = int(wall.replace(tzinfo=tz, fold=0).timestamp())
    after = datetime.fromtimestamp(high, tz).utcoffset()
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == after:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, UTC)


def _exists(wall: datetime, tz: tzinfo) -> bool:
    local = wall.replace(tzinfo=tz)
    return local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall


def occurrence(day: date, at: tuple[int, int], tz: tzinfo) -> datetime:
    """The instant (in UTC) at which wall time `at` happens on local `day`, as the rules say."""
    wall = datetime.combine(day, time(at[0], at[1]))
    if not _exists(wall, tz):
        return _gap_end(wall, tz)
    # fold=0 is the first of two occurrences when the clocks go back.
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


def due(entries: Sequence[ScheduleEntry], last: datetime, now: datetime) -> list[tuple[str, str]]:
    """(command, payload) pairs due in (last, now], in the order to send them.

    `now` and `last` must be time-zone aware; local time is `now`'s zone.
    """
    tz = now.tzinfo
    if tz is None or last.tzinfo is None:
        raise ValueError("due() needs time-zone aware datetimes")
    # Compare in UTC: Python compares two datetimes of one zone by wall time, ignoring `fold`,
    # which would misorder the two passes through a repeated hour.
    last, now = last.astimezone(UTC), now.astimezone(UTC)
    if last >= now:
        return []
    today = now.astimezone(tz).date()
    first = max(last.astimezone(tz).date(), today - timedelta(days=LOOKBACK_DAYS))
    hits: list[tuple[datetime, int, int, str, str]] = []
    day = first - timedelta(days=1)  # a skipped or shifted time may belong to the day before
    while day <= today:
        for index, entry in enumerate(entries):
            if entry.days and DAYS[day.weekday()] not in entry.days:
                continue
            when = occurrence(day, entry.at, tz)
            if last < when <= now:
                hits += [(when, index, i, c, p) for i, (c, p) in enumerate(entry.commands)]
        day += timedelta(days=1)
    latest: dict[str, tuple[datetime, int, int, str, str]] = {}
    for hit in sorted(hits):
        latest[hit[3]] = hit
    return [(hit[3], hit[4]) for hit in sorted(latest.values())]


def current(entries: Sequence[ScheduleEntry], now: datetime) -> list[tuple[str, str]]:
    """Each scheduled command with the payload of its latest step at or before `now`."""
    return due(entries, now - timedelta(days=LOOKBACK_DAYS), now)

"""Schedules: what is due between two ticks, across days, weekdays, gaps and clock changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.schedule import current, due
from common.config import ScheduleEntry

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = ScheduleEntry(at=(23, 0), commands=(("display", "OFF"),))
MORNING = ScheduleEntry(at=(7, 0), commands=(("display", "ON"), ("brightness", "80")))


def at(
    tz: ZoneInfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz)


def ticks(
    entries: list[ScheduleEntry], start: datetime, end: datetime, step: timedelta
) -> list[tuple[datetime, str, str]]:
    """Run the bridge's loop: call due() every `step` of real time, with local `now`."""
    tz = start.tzinfo
    fired = []
    last, stop = start.astimezone(UTC), end.astimezone(UTC)
    while last < stop:
        now = min(last + step, stop)
        local_last, local_now = last.astimezone(tz), now.astimezone(tz)
        fired += [(now, c, p) for c, p in due(entries, local_last, local_now)]
        last = now
    return fired


def test_fires_once_when_its_minute_passes() -> None:
    last, now = at(BERLIN, 2025, 6, 2, 6, 59, 40), at(BERLIN, 2025, 6, 2, 7, 0, 10)
    assert due([NIGHT, MORNING], last, now) == [("display", "ON"), ("brightness", "80")]
    assert due([MORNING], now, now + timedelta(seconds=30)) == []
    # (last, now]: exactly at `last` has already fired, exactly at `now` fires now.
    assert due([MORNING], at(BERLIN, 2025, 6, 2, 7, 0), now) == []
    assert due([MORNING], last, at(BERLIN, 2025, 6, 2, 7, 0)) != []


def test_days_are_local_weekdays() -> None:
    weekend = ScheduleEntry(at=(9, 0), days=("sat", "sun"), commands=(("pause", "ON"),))
    saturday, monday = at(BERLIN, 2025, 6, 7, 8, 59), at(BERLIN, 2025, 6, 9, 8, 59)
    assert due([weekend], saturday, saturday + timedelta(minutes=2)) == [("pause", "ON")]
    assert due([weekend], monday, monday + timedelta(minutes=2)) == []


def test_order_follows_time_then_config() -> None:
    a = ScheduleEntry(at=(8, 0), commands=(("interval", "30"),))
    b = ScheduleEntry(at=(7, 30), commands=(("pause", "OFF"),))
    c = ScheduleEntry(at=(8, 0), commands=(("brightness", "10"),))
    last = at(BERLIN, 2025, 6, 2, 7, 0)
    got = due([a, b, c], last, last + timedelta(hours=2))
    assert got == [("pause", "OFF"), ("interval", "30"), ("brightness", "10")]


def test_same_command_same_minute_later_entry_wins() -> None:
    a = ScheduleEntry(at=(8, 0), commands=(("brightness", "10"),))
    b = ScheduleEntry(at=(8, 0), commands=(("brightness", "90"),))
    last = at(BERLIN, 2025, 6, 2, 7, 59)
    assert due([a, b], last, last + timedelta(minutes=2)) == [("brightness", "90")]


def test_long_gap_sends_each_command_once_with_its_latest_state() -> None:
    last = at(BERLIN, 2025, 6, 2, 12, 0)
    now = at(BERLIN, 2025, 6, 4, 12, 0)  # two days asleep: 2 nights, 2 mornings missed
    got = due([NIGHT, MORNING], last, now)
    assert got == [("display", "ON"), ("brightness", "80")]
    evening = at(BERLIN, 2025, 6, 4, 23, 30)
    assert due([NIGHT, MORNING], last, evening) == [("brightness", "80"), ("display", "OFF")]


def test_a_year_asleep_is_cheap_and_correct() -> None:
    last = at(BERLIN, 2024, 6, 1, 12, 0)
    assert due([NIGHT], last, at(BERLIN, 2025, 6, 1, 23, 30)) == [("display", "OFF")]


def test_clock_going_back_fires_nothing_and_naive_times_are_refused() -> None:
    now = at(BERLIN, 2025, 6, 2, 7, 0, 30)
    assert due([MORNING], now, now - timedelta(hours=1)) == []
    with pytest.raises(ValueError, match="aware"):
        due([MORNING], datetime(2025, 6, 2, 6, 0), datetime(2025, 6, 2, 8, 0))


def test_spring_forward_skipped_time_fires_once_at_the_jump() -> None:
    skipped = ScheduleEntry(at=(2, 30), commands=(("display", "OFF"),))
    after = ScheduleEntry(at=(3, 15), commands=(("display", "ON"),))
    start, end = at(BERLIN, 2025, 3, 29, 12, 0), at(BERLIN, 2025, 3, 31, 12, 0)
    fired = ticks([skipped, after], start, end, timedelta(seconds=30))
    assert [(c, p) for _, c, p in fired] == [("display", "OFF"), ("display", "ON")] * 2
    jump_day = next(t.astimezone(BERLIN) for t, _, p in fired if p == "OFF")
    assert (jump_day.day, jump_day.hour, jump_day.minute) == (30, 3, 0)


def test_fall_back_repeated_time_fires_once() -> None:
    repeated = ScheduleEntry(at=(2, 30), commands=(("pause", "ON"),))
    start, end = at(BERLIN, 2025, 10, 25, 12, 0), at(BERLIN, 2025, 10, 27, 12, 0)
    fired = ticks([repeated], start, end, timedelta(seconds=30))
    assert len(fired) == 2
    first = fired[0][0].astimezone(BERLIN)
    assert (first.hour, first.minute, first.utcoffset()) == (2, 30, timedelta(hours=2))


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC", "Asia/Kolkata"]


@settings(max_examples=25, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start_day=st.integers(0, 364),
    times=st.lists(st.tuples(st.integers(0, 23), st.integers(0, 59)), min_size=1, max_size=4),
    step_minutes=st.integers(1, 240),
)
def test_each_occurrence_fires_exactly_once_whatever_the_tick(
    zone: str, start_day: int, times: list[tuple[int, int]], step_minutes: int
) -> None:
    tz = ZoneInfo(zone)
    commands = ("display", "brightness", "pause", "interval")
    entries = [ScheduleEntry(at=t, commands=((commands[i], str(i)),)) for i, t in enumerate(times)]
    start = at(tz, 2025, 1, 1) + timedelta(days=start_day)
    fired = ticks(entries, start, start + timedelta(days=7), timedelta(minutes=step_minutes))
    for i, _ in enumerate(entries):
        # A tick window can hold at most one occurrence of an entry (steps are under a day),
        # so every one of the seven daily occurrences fires, each once.
        assert sum(1 for _, c, _p in fired if c == commands[i]) == 7


def test_current_state_is_each_command_at_its_latest_step() -> None:
    night = at(BERLIN, 2025, 6, 2, 1, 30)
    assert current([NIGHT, MORNING], night) == [("brightness", "80"), ("display", "OFF")]
    assert current([NIGHT, MORNING], at(BERLIN, 2025, 6, 2, 7, 0)) == [
        ("display", "ON"),
        ("brightness", "80"),
    ]
    weekly = ScheduleEntry(at=(9, 0), days=("mon",), commands=(("pause", "ON"),))
    assert current([weekly], at(BERLIN, 2025, 6, 8, 23, 0)) == [("pause", "ON")]  # a Sunday
    assert current([], night) == []

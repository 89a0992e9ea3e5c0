"""Taps and long presses (frame.level), the notice icons (frame.icons, frame.show) and the
commands they add: pure, on CPython."""

from __future__ import annotations

import json

import pytest

from titano_app.frame import commands, icons, state
from titano_app.frame.level import HOLD_MS, Touch


def test_a_tap_acts_on_its_third_when_the_finger_lifts() -> None:
    t = Touch()
    assert t.update(470, True, 0) is None  # down: nothing yet
    assert t.update(None, True, 300) is None
    assert t.update(None, False, 400) == "next"
    assert t.update(None, False, 500) is None  # once
    assert t.update(10, False, 600) == "previous"  # down and up between two looks
    assert t.update(240, False, 700) == "pause"


def test_a_long_press_acts_once_at_hold_ms_and_its_release_does_nothing() -> None:
    t = Touch()
    assert t.update(470, True, 1000) is None
    assert t.update(None, True, 1000 + HOLD_MS - 1) is None
    assert t.update(None, True, 1000 + HOLD_MS) == "hold"
    assert t.update(None, True, 1000 + 5 * HOLD_MS) is None
    assert t.update(None, False, 1000 + 6 * HOLD_MS) is None  # no tap after the hold
    assert t.update(10, True, 9000) is None  # a new press starts afresh
    assert t.update(None, False, 9100) == "previous"


def test_hold_event_names_the_picture() -> None:
    pid = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    assert json.loads(state.touch_event("hold", pid)) == {
        "event": "touch",
        "action": "hold",
        "picture": pid,
    }
    assert json.loads(state.touch_event("next")) == {"event": "touch", "action": "next"}


def test_notice_words_each_have_an_icon_inside_its_square() -> None:
    assert set(commands.NOTICES) == set(icons.SHAPES)
    for word in commands.NOTICES:
        width, height = icons.size(word)
        lit: dict[tuple[int, int], int] = {}
        icons.paint(lit, word)
        assert lit and all(0 <= x < width and 0 <= y < height for x, y in lit)
        assert icons.X + width < 462  # clear of the offline cross in the top right corner


def test_the_new_commands_parse() -> None:
    assert commands.parse("like", "PRESS") == ("like", None)
    assert commands.parse("hide", "PRESS") == ("hide", None)
    assert commands.parse("notice", "liked") == ("notice", "liked")
    with pytest.raises(commands.CommandError, match="notice"):
        commands.parse("notice", "party")

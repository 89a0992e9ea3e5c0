"""The frame's inbox merges a burst by topic: the latest summary always wins, a setting keeps
its last value, next/previous are counted and capped, and a flood is reported once."""

from __future__ import annotations

from titano_app.frame.errors import FrameError
from titano_app.frame.inbox import LIMIT, STEP_CAP, Inbox
from titano_app.frame.topics import Topics

T = Topics("kitchen")


def cmd(name: str) -> str:
    return "titanoframe/kitchen/cmd/" + name


def inbox() -> tuple[Inbox, list[FrameError]]:
    problems: list[FrameError] = []
    return Inbox(T, problems), problems


def test_a_quiet_inbox_is_a_queue_by_topic() -> None:
    box, problems = inbox()
    box.put(cmd("brightness"), b"30")
    box.put(T.manifest, b"{summary}")
    box.put(cmd("next"), b"PRESS")
    assert cmd("next") in box and T.manifest in box
    assert box.take() == [
        (cmd("brightness"), b"30"),
        (cmd("next"), b"PRESS"),
        (T.manifest, b"{summary}"),  # commands first, the summary last
    ]
    assert not box and problems == []


def test_a_flood_keeps_the_last_value_the_latest_summary_and_a_few_steps() -> None:
    box, problems = inbox()
    for i in range(3000):
        box.put(cmd("brightness"), str(i % 101).encode())
        if i == 1500:
            box.put(T.manifest, b"old")
    for _ in range(40):
        box.put(cmd("next"), b"PRESS")
    box.put(T.manifest, b"new")
    box.put(cmd("brightness"), b"40")
    taken = box.take()
    assert taken == [(cmd("brightness"), b"40")] + [(cmd("next"), b"PRESS")] * STEP_CAP + [
        (T.manifest, b"new")
    ]
    assert [(p.code, p.detail) for p in problems] == [
        (
            "overflow",
            f"3043 messages at once: 3001 merged into a later one, {40 - STEP_CAP} dropped",
        )
    ]
    assert box.take() == [] and len(problems) == 1  # said once per burst


def test_more_topics_than_it_holds_are_dropped_and_counted() -> None:
    box, problems = inbox()
    for i in range(LIMIT + 4):
        box.put(cmd(f"made-up-{i}"), b"x")
    box.put(T.manifest, b"summary")  # never dropped
    taken = box.take()
    assert len(taken) == LIMIT + 1 and taken[-1] == (T.manifest, b"summary")
    assert problems[0].detail.endswith("0 merged into a later one, 4 dropped")

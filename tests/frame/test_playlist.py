"""The slideshow order: every picture once per cycle, new order each cycle, no repeats."""

from __future__ import annotations

import itertools
import random
import tracemalloc
from collections.abc import Callable

import pytest

from titano_app.frame import playlist
from titano_app.frame.playlist import HISTORY, Shuffle


def draws(shuffle: Shuffle, count: int) -> list[int]:
    out = []
    for _ in range(count):
        value = shuffle.next()
        assert value is not None
        out.append(value)
    return out


def assert_no_back_to_back(shown: list[int]) -> None:
    assert all(a != b for a, b in itertools.pairwise(shown))


def test_three_cycles_of_500_show_each_picture_once_per_cycle() -> None:
    shuffle = Shuffle(500, random.Random(1).getrandbits)
    shown = draws(shuffle, 1500)
    cycles = [shown[0:500], shown[500:1000], shown[1000:1500]]
    for cycle in cycles:
        assert sorted(cycle) == list(range(500))
    assert cycles[0] != cycles[1] != cycles[2]
    assert cycles[0] != list(range(500))
    assert_no_back_to_back(shown)


@pytest.mark.parametrize("n", [2, 3, 5, 8, 9, 17, 31, 64, 100])
def test_small_libraries_stay_exhaustive_without_repeats(n: int) -> None:
    for seed in range(30):
        shuffle = Shuffle(n, random.Random(seed).getrandbits)
        shown = draws(shuffle, n * 6)
        for start in range(0, n * 6, n):
            assert sorted(shown[start : start + n]) == list(range(n))
        assert_no_back_to_back(shown)


def keyed(values: list[int]) -> Callable[[int], int]:
    """A key source that hands out `values` in turn (two per round: add key, multiplier)."""
    stream = iter(values)
    return lambda bits: next(stream)


def test_cycle_boundary_repeat_is_moved_to_second_place() -> None:
    first = draws(Shuffle(4, keyed([0] * 6)), 4)
    # keys whose order starts with the picture the first cycle ended on
    keys = next(
        [a, 1, b, 1, c, 1]
        for a, b, c in itertools.product(range(4), repeat=3)
        if Shuffle(4, keyed([a, 1, b, 1, c, 1])).next() == first[-1]
    )
    shuffle = Shuffle(4, keyed([0] * 6 + keys))
    assert draws(shuffle, 4) == first

    second = draws(shuffle, 4)

    assert sorted(second) == [0, 1, 2, 3]
    assert second[0] != first[-1]
    assert second[1] == first[-1]


def test_empty_and_single_picture_libraries() -> None:
    assert Shuffle(0).next() is None
    assert Shuffle(0).previous() is None
    one = Shuffle(1)
    assert [one.next() for _ in range(3)] == [0, 0, 0]


def test_previous_walks_back_then_next_walks_forward_again() -> None:
    shuffle = Shuffle(50, random.Random(2).getrandbits)
    shown = draws(shuffle, 5)
    assert [shuffle.previous() for _ in range(4)] == shown[3::-1]
    assert shuffle.previous() is None  # nothing before the first picture
    assert draws(shuffle, 4) == shown[1:]
    fresh = shuffle.next()
    assert fresh not in shown
    assert shuffle.previous() == shown[-1]


def test_history_is_bounded() -> None:
    shuffle = Shuffle(1000, random.Random(3).getrandbits)
    draws(shuffle, 100)
    back = 0
    while shuffle.previous() is not None:
        back += 1
    assert back == HISTORY - 1


def test_growing_within_the_cycle_keeps_it_going_without_repeats() -> None:
    shuffle = Shuffle(300, random.Random(4).getrandbits)
    shown = draws(shuffle, 100)
    shuffle.resize(400, current=shown[-1])  # same power of two (512)
    rest: list[int] = []
    while len(set(shown + rest)) == len(shown + rest):
        rest += draws(shuffle, 1)
    cycle = shown + rest[:-1]
    assert len(cycle) >= 300  # the first cycle ran to its end without showing anything twice
    assert set(cycle) <= set(range(400))


def test_outgrowing_the_cycle_starts_a_new_one_after_the_current_picture() -> None:
    for seed in range(40):
        shuffle = Shuffle(10, random.Random(seed).getrandbits)
        current = draws(shuffle, 3)[-1]
        shuffle.resize(40, current=current)
        assert shuffle.previous() is None  # numbers may mean other pictures now
        shown = draws(shuffle, 40)
        assert sorted(shown) == list(range(40))
        assert shown[0] != current


def test_shrinking_never_returns_a_number_out_of_range() -> None:
    shuffle = Shuffle(100, random.Random(5).getrandbits)
    draws(shuffle, 50)
    shuffle.resize(3, current=None)
    assert set(draws(shuffle, 30)) == {0, 1, 2}
    shuffle.resize(0)
    assert shuffle.next() is None


def test_same_key_stream_same_order() -> None:
    a = Shuffle(77, random.Random(6).getrandbits)
    b = Shuffle(77, random.Random(6).getrandbits)
    assert draws(a, 200) == draws(b, 200)


@pytest.mark.usefixtures("gc_paused")
def test_memory_does_not_grow_with_the_library() -> None:
    shuffle = Shuffle(100_000, random.Random(7).getrandbits)
    draws(shuffle, 10)
    # Only what the playlist's own code holds: the process total also counts whatever another
    # thread (a server a neighbouring test left running) allocates meanwhile.
    own = [tracemalloc.Filter(True, playlist.__file__)]
    tracemalloc.start()
    try:
        base = tracemalloc.take_snapshot().filter_traces(own)
        draws(shuffle, 20_000)
        after = tracemalloc.take_snapshot().filter_traces(own)
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(base, "filename"))
    assert grown < 2048


def test_previous_after_a_picture_shown_by_id_goes_back_to_the_one_before_it() -> None:
    shuffle = Shuffle(50, random.Random(6).getrandbits)
    shown = draws(shuffle, 3)
    chosen = next(x for x in range(50) if x not in shown)
    shuffle.shown(chosen)  # `show <id>`
    assert shuffle.previous() == shown[-1]  # not shown[-2]: the shown picture is not skipped
    assert shuffle.previous() == shown[-2]
    assert draws(shuffle, 2) == [shown[-1], chosen]
    assert shuffle.next() not in (chosen, *shown)


def test_a_picture_shown_by_id_while_walking_back_replaces_the_pictures_ahead() -> None:
    shuffle = Shuffle(50, random.Random(7).getrandbits)
    shown = draws(shuffle, 4)
    assert shuffle.previous() == shown[2]
    chosen = next(x for x in range(50) if x not in shown)
    shuffle.shown(chosen)
    assert shuffle.previous() == shown[2]
    assert shuffle.next() == chosen
    shuffle.shown(99)  # out of range (the card changed under it): ignored
    assert shuffle.previous() == shown[2]

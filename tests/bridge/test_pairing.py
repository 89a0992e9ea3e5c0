"""Portrait pairing: who shares a slide, and how little that changes from poll to poll."""

from __future__ import annotations

import random
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.pairing import Asset, assets_of, pair_portraits


def make(rng: random.Random, n: int, portrait_share: float = 1.0) -> list[Asset]:
    out = []
    for _ in range(n):
        pid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        w, h = (3000, 4000) if rng.random() < portrait_share else (4000, 3000)
        out.append((pid, w, h, rng.uniform(1e9, 1.7e9)))
    return out


def pairs(pictures: list[str]) -> set[str]:
    return {p for p in pictures if "+" in p}


def assert_covers_exactly(assets: list[Asset], pictures: list[str]) -> None:
    shown = [a for p in pictures for a in assets_of(p)]
    assert sorted(shown) == sorted({a[0] for a in assets})


def test_landscapes_and_squares_stay_single() -> None:
    assets = [("a", 4000, 3000, 1.0), ("b", 3000, 3000, 2.0), ("c", 1920, 1080, 3.0)]
    assert pair_portraits(assets) == ["a", "b", "c"]


def test_portraits_pair_in_time_order_and_results_are_ordered() -> None:
    assets = [("p2", 3, 4, 20.0), ("l1", 4, 3, 15.0), ("p1", 3, 4, 10.0)]
    assert pair_portraits(assets) == ["p1+p2", "l1"]


def test_odd_count_leaves_exactly_one_single() -> None:
    rng = random.Random(3)
    assets = make(rng, 101)
    pictures = pair_portraits(assets)
    assert len(pairs(pictures)) == 50 and len(pictures) == 51
    assert_covers_exactly(assets, pictures)


def test_input_order_and_duplicates_do_not_matter() -> None:
    rng = random.Random(4)
    assets = make(rng, 200, portrait_share=0.6)
    shuffled = assets[::-1] + assets[:10]
    assert pair_portraits(shuffled) == pair_portraits(assets)


def test_previous_pairs_are_kept_while_both_remain_portraits() -> None:
    assets = [("a", 3, 4, 1.0), ("b", 3, 4, 2.0), ("c", 3, 4, 3.0), ("d", 3, 4, 4.0)]
    previous = ["a+d", "b+c"]
    assert sorted(pair_portraits(assets, previous)) == ["a+d", "b+c"]
    rotated = [("a", 4, 3, 1.0), *assets[1:]]  # `a` was edited into a landscape
    result = pair_portraits(rotated, previous)
    assert "a" in result and "b+c" in result and "a+d" not in result


def test_malformed_previous_is_ignored() -> None:
    assets = [("a", 3, 4, 1.0), ("b", 3, 4, 2.0)]
    assert pair_portraits(assets, ["a+a", "a+b+c", "x+b", "", "a"]) == ["a+b"]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), share=st.floats(0.3, 1.0))
def test_adding_one_photo_changes_at_most_one_pair(seed: int, share: float) -> None:
    rng = random.Random(seed)
    assets = make(rng, 500, share)
    before = pair_portraits(assets, pair_portraits(assets))
    added = make(rng, 1, share)
    after = pair_portraits([*assets, *added], before)
    assert_covers_exactly([*assets, *added], after)
    assert not pairs(before) - pairs(after)
    assert len(pairs(after) - pairs(before)) <= 1


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32), share=st.floats(0.3, 1.0), victim=st.integers(0, 499))
def test_removing_one_photo_changes_at_most_two_pairs(seed: int, share: float, victim: int) -> None:
    rng = random.Random(seed)
    assets = make(rng, 500, share)
    before = pair_portraits(assets)
    remaining = assets[:victim] + assets[victim + 1 :]
    after = pair_portraits(remaining, before)
    assert_covers_exactly(remaining, after)
    changed = pairs(before) ^ pairs(after)
    assert len(changed) <= 2


def test_many_polls_stay_stable() -> None:
    # A year of small edits: every poll adds or removes one photo; pairs only ever change
    # around that photo, and at most one portrait is ever single among the fresh ones.
    rng = random.Random(5)
    assets = make(rng, 300, 0.7)
    pictures = pair_portraits(assets)
    for _ in range(300):
        if rng.random() < 0.5:
            assets.append(make(rng, 1, 0.7)[0])
        else:
            assets.pop(rng.randrange(len(assets)))
        new = pair_portraits(assets, pictures)
        assert len(pairs(pictures) ^ pairs(new)) <= 2
        assert_covers_exactly(assets, new)
        pictures = new
    singles = [
        p for p in pictures if "+" not in p and any(a[0] == p and a[2] > a[1] for a in assets)
    ]
    assert len(singles) <= 1


def test_without_history_changes_stay_local() -> None:
    # No previous manifest (first run, or the broker lost it): still no reshuffle.
    rng = random.Random(6)
    worst = 0
    for _ in range(30):
        assets = make(rng, 500)
        before = pairs(pair_portraits(assets))
        after = pairs(pair_portraits([*assets, *make(rng, 1)]))
        worst = max(worst, len(before - after))
    assert worst <= 12  # of 250 pairs

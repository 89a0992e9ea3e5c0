"""Retired pictures on the card (frame/retired.py through frame/store.py): a picture that leaves
the manifest is moved off the slideshow, kept, restored without a download, evicted oldest first
when a listed picture needs room, deleted once its time is up, and the one on screen never."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from tests.frame.test_store import SMALL, add, make_bmp, new_id
from titano_app.frame.retired import DAY_S, TIDY_BATCH, TIDY_MS
from titano_app.frame.store import Store, StoreError

PICTURE = len(make_bmp(*SMALL))
DAY = 20_000  # a day number (unix time // 86400), in 2024


class Card:
    """A store on a card of room for `slots` pictures, and a date that tests move on."""

    def __init__(self, root: Path, slots: int = 100, keep_days: int = 30) -> None:
        self.root, self.slots, self.keep_days = root, slots, keep_days
        self.now: int | None = DAY * DAY_S
        self.store = self.boot()

    def boot(self) -> Store:
        """A store on the card, as a reboot makes it."""
        store = Store(
            str(self.root), self._statvfs, SMALL, 0, unix_time=lambda: self.now,
            keep_days=self.keep_days,
        )  # fmt: skip
        store.boot()
        return store

    def _statvfs(self, _path: str) -> tuple[int, ...]:
        free = max(0, (self.slots - len(self.files())) * PICTURE)
        return (1, 1, self.slots * PICTURE, free, free, 0, 0, 0, 0, 255)

    def files(self) -> list[Path]:
        """Every picture file on the card, listed or retired."""
        return [p for p in self.root.rglob("*.bmp")]

    def retired(self) -> set[str]:
        return {p.name.split(".")[0] for p in (self.root / "r").rglob("*.bmp")}

    def listed(self) -> set[str]:
        return {p.name.split(".")[0] for p in (self.root / "p").rglob("*.bmp")}


@pytest.fixture
def card(tmp_path: Path) -> Card:
    return Card(tmp_path / "sd")


def ids(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [new_id(rng) for _ in range(n)]


def test_retired_pictures_leave_the_count_keep_their_file_and_come_back(card: Card) -> None:
    store = card.store
    pics = ids(5)
    for pid in pics:
        add(store, pid)
    inodes = {p.name: p.stat().st_ino for p in card.files()}
    assert all(store.retire(pid, "00000001") for pid in pics)
    assert not store.retire(pics[0], "00000001")  # not there any more: harmless
    assert store.count() == 0 and store.nth(0) is None and store.find(pics[0]) is None
    assert card.retired() == set(pics) and card.listed() == set()
    assert os.listdir(card.root / "r") == [str(DAY)]
    # a reboot: the card says what is retired
    store = card.boot()
    assert store.count() == 0 and store.retired.days == [DAY]
    assert not store.restore(pics[0], "00000002")  # another version: not this file
    assert all(store.restore(pid, "00000001") for pid in pics)
    assert store.count() == 5 and card.listed() == set(pics) and card.retired() == set()
    assert {p.name: p.stat().st_ino for p in card.files()} == inodes  # the same files


def test_room_is_made_from_the_oldest_retired_picture_never_a_listed_one(tmp_path: Path) -> None:
    card = Card(tmp_path / "sd", slots=4)
    store = card.store
    a, b, c, d = ids(4)
    for pid in (a, b, c, d):
        add(store, pid)
    store.retire(b, "00000001")
    card.now = (DAY + 1) * DAY_S
    store.retire(a, "00000001")
    store.ensure_room(PICTURE)  # B, retired a day before A, goes first
    assert card.retired() == {a} and card.listed() == {c, d}
    store.ensure_room(PICTURE)  # there is room: nothing goes
    assert card.retired() == {a}
    add(store, new_id(random.Random(9)))
    store.ensure_room(PICTURE)
    assert card.retired() == set() and len(card.files()) == 3
    add(store, new_id(random.Random(10)))
    with pytest.raises(StoreError) as caught:  # nothing retired left: the card is full
        store.ensure_room(PICTURE)
    assert caught.value.code == "sd_full" and len(card.listed()) == 4


def test_the_picture_on_screen_is_never_deleted(tmp_path: Path) -> None:
    card = Card(tmp_path / "sd", slots=3)
    store = card.store
    a, b, c = ids(3)
    for pid in (a, b, c):
        add(store, pid)
    store.retired.keep = f"{a}.00000001.bmp"  # what the slideshow sets when it draws A
    assert store.retire(a, "00000001")
    with pytest.raises(StoreError):  # A is all there is to evict, and it is on screen
        store.ensure_room(PICTURE)
    assert card.retired() == {a}
    # a replaced version on screen is retired, not deleted
    store.retired.keep = f"{b}.00000001.bmp"
    add(store, b, "00000002")
    assert store.delete(b, "00000001")
    assert card.retired() == {a, b}
    card.now = (DAY + 100) * DAY_S  # and time does not delete it either
    assert store.retired.expire(DAY + 100, 100) == 1
    assert card.retired() == {b}
    store.retired.keep = f"{c}.00000001.bmp"  # once the screen moved on, it can go
    store.ensure_room(PICTURE)
    assert card.retired() == set()


def test_retired_pictures_are_deleted_once_their_time_is_up(card: Card) -> None:
    store = card.store
    old, recent = ids(2)
    add(store, old)
    add(store, recent)
    store.retire(old, "00000001")
    card.now = (DAY + 20) * DAY_S
    store.retire(recent, "00000001")
    assert store.retired.tidy(0) == 0  # 20 days: kept
    card.now = (DAY + 31) * DAY_S
    assert store.retired.tidy(TIDY_MS - 1) == 0  # not looked at again before TIDY_MS
    assert store.retired.tidy(TIDY_MS) == 1
    assert card.retired() == {recent}
    assert sorted(os.listdir(card.root / "r")) == [str(DAY + 20)]  # empty folders go too
    card.now = (DAY + 51) * DAY_S
    assert store.retired.tidy(2 * TIDY_MS) == 1
    assert card.files() == [] and store.retired.days == []


def test_expiry_is_done_in_batches(card: Card) -> None:
    store = card.store
    pics = ids(TIDY_BATCH + 3)
    for pid in pics:
        add(store, pid)
        store.retire(pid, "00000001")
    card.now = (DAY + 40) * DAY_S
    assert store.retired.tidy(0) == TIDY_BATCH
    assert store.retired.tidy(1) == 3  # a full batch: the next look is at once
    assert card.files() == []


def test_pictures_retired_before_the_clock_is_set_are_dated_when_it_is(card: Card) -> None:
    store = card.store
    a, b = ids(2)
    add(store, a)
    add(store, b)
    card.now = None  # the board before NTP
    store.retire(a, "00000001")
    assert store.retired.tidy(0) == 0
    card.now = (DAY + 40) * DAY_S
    assert store.retired.tidy(TIDY_MS) == 1  # dated today, not deleted as if from 1970
    assert card.retired() == {a}
    assert os.listdir(card.root / "r") == [str(DAY + 40)]
    assert store.restore(a, "00000001")


def test_dating_many_undated_pictures_is_done_in_batches_too(card: Card) -> None:
    store = card.store
    pics = ids(TIDY_BATCH + 2)
    card.now = None
    for pid in pics:
        add(store, pid)
        store.retire(pid, "00000001")
    card.now = (DAY + 1) * DAY_S
    assert store.retired.tidy(0) == TIDY_BATCH
    assert store.retired.tidy(1) == 2
    assert store.retired.days == [DAY + 1] and card.retired() == set(pics)
    assert os.listdir(card.root / "r") == [str(DAY + 1)]

"""The removal brake and the shared-id detector, alone: values in, values out, time passed in."""

from __future__ import annotations

import json
from dataclasses import replace

from bridge.boards import Boards, boot_of
from bridge.brake import Brake, sources_digest
from bridge.bridgestate import held_since, iso
from common import manifest
from common.config import Exclude, Source
from tests.kit.bridgekit import frame

BEFORE = {f"p{n}" for n in range(10)}
KEPT = sorted(BEFORE)[:3]  # 7 of 10 gone
HOUR, DAY = 3600.0, 86400.0
FAV = {("favorites", "True"): 3}


def test_a_drop_needs_the_time_and_a_later_walk() -> None:
    brake = Brake("kitchen", 0.5, DAY)
    assert brake.check(BEFORE, KEPT, FAV, False, (1, 0.0), 100.0) == 7
    assert brake.hold is not None and brake.held_until == 100.0 + DAY
    assert brake.check(BEFORE, KEPT, FAV, False, (5, 5 * HOUR), 5 * HOUR) == 7  # walks, no time
    assert brake.check(BEFORE, KEPT, FAV, False, (1, 0.0), 2 * DAY) == 7  # time, no walk
    assert brake.check(BEFORE, KEPT, FAV, False, (2, DAY + 200), DAY + 200) == 0


def test_a_confirmation_releases_a_hold_and_only_a_hold() -> None:
    brake = Brake("kitchen", 0.5, DAY)
    assert not brake.confirm()  # nothing held: nothing pre-approved
    assert brake.check(BEFORE, KEPT, FAV, False, (1, 0.0), 0.0) == 7
    epoch = brake.epoch
    assert brake.confirm() and brake.epoch == epoch + 1
    assert brake.check(BEFORE, KEPT, FAV, False, (1, 0.0), 1.0) == 0
    brake.settled()
    assert brake.hold is None and not brake.confirmed


def test_a_changed_config_is_not_held_and_a_healed_drop_is_forgotten() -> None:
    brake = Brake("kitchen", 0.5, DAY)
    assert brake.check(BEFORE, KEPT, FAV, True, (1, 0.0), 0.0) == 0
    assert brake.check(BEFORE, KEPT, FAV, False, (1, 0.0), 0.0) == 7
    assert brake.check(BEFORE, BEFORE, FAV, False, (1, 0.0), 1.0) == 0
    assert brake.hold is None


def test_a_restored_start_counts_and_the_first_walk_after_it_too() -> None:
    brake = Brake("kitchen", 0.5, DAY)
    brake.restore(1000.0)
    # a restarted bridge: its first walk began after the drop was first seen by the last run
    assert brake.check(BEFORE, KEPT, FAV, False, (1, 5000.0), 5000.0) == 7
    assert brake.hold is not None and brake.hold.since == 1000.0
    assert brake.check(BEFORE, KEPT, FAV, False, (1, 5000.0), 1000.0 + DAY) == 0
    later = Brake("kitchen", 0.5, DAY)
    later.restore(10**12)  # a start in the future (a clock set back) is now, not later
    later.check(BEFORE, KEPT, FAV, False, (1, 0.0), 50.0)
    assert later.hold is not None and later.hold.since == 50.0


def test_a_source_that_empties_is_a_drop_until_it_goes_out() -> None:
    brake = Brake("kitchen", 0.5, DAY)
    both = {("favorites", "True"): 9, ("album", "Trip"): 1}
    assert brake.check(BEFORE, BEFORE, both, False, (1, 0.0), 0.0) == 0
    empty = {("favorites", "True"): 9, ("album", "Trip"): 0}
    one_gone = sorted(BEFORE)[1:]
    assert brake.check(BEFORE, one_gone, empty, False, (1, 0.0), 1.0) == 1
    assert brake.check(BEFORE, one_gone, empty, False, (2, 2.0), 2.0) == 1  # still the album
    assert brake.confirm()
    assert brake.check(BEFORE, one_gone, empty, False, (2, 2.0), 3.0) == 0
    brake.settled()
    assert brake.check(set(one_gone), one_gone[1:], empty, False, (2, 2.0), 4.0) == 0


def test_sources_digest_follows_the_source_config_only() -> None:
    base = sources_digest(frame(), False, True)
    assert len(base) == 8 and base == sources_digest(frame(), False, True)
    assert base != sources_digest(frame(sources=(Source("album", "Trip"),)), False, True)
    assert base != sources_digest(frame(exclude=(Exclude("tag", "skip"),)), False, True)
    assert base != sources_digest(frame(), True, True)
    assert base == sources_digest(replace(frame(), secret="other"), False, True)


def test_the_summary_carries_src_and_reads_it_back() -> None:
    built = manifest.build({"00000000-0000-4000-8000-000000000001": "0badf00d"}, None,
                           "http://r.test/", "bmp8", 1, "1234abcd")  # fmt: skip
    summary = manifest.parse_summary(built.summary)
    assert summary is not None and summary.sources == "1234abcd"
    old = manifest.build({}, None, "http://r.test/", "bmp8", 1)
    parsed = manifest.parse_summary(old.summary)
    assert parsed is not None and parsed.sources is None


def test_boot_ids_that_take_turns_are_two_boards() -> None:
    boards = Boards(window=600.0)
    assert not boards.seen("kitchen", "aaaaaaaa", 0.0)
    assert not boards.seen("kitchen", "aaaaaaaa", 5.0)
    assert not boards.seen("kitchen", "bbbbbbbb", 10.0)  # a reboot
    assert boards.boards("kitchen", 10.0) == 2 and not boards.shared("kitchen", 10.0)
    assert boards.seen("kitchen", "aaaaaaaa", 20.0)  # the first came back: two boards
    assert not boards.seen("kitchen", "bbbbbbbb", 30.0)  # reported once
    assert boards.shared("kitchen", 30.0)
    assert not boards.shared("kitchen", 2000.0) and boards.boards("kitchen", 2000.0) == 0
    assert boot_of(json.dumps({"boot": "0a1b2c3d"}).encode()) == "0a1b2c3d"
    assert boot_of(b'{"boot": "nope"}') is None and boot_of(b"\xff") is None


def test_held_since_is_read_back_from_the_bridge_state() -> None:
    doc = {"frames": {"kitchen": {"held_since": iso(1763884800.0)}, "hall": {"held_since": None}}}
    assert held_since(json.dumps(doc).encode()) == {"kitchen": 1763884800.0}
    assert held_since(b"not json") == {} and held_since(b"[]") == {}

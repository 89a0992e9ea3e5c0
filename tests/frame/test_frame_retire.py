"""The frame retires, it does not delete (CPython, a real Mosquitto, a picture server): a picture
that leaves the manifest leaves the slideshow at once and stays on the card; back at the same
version it is shown again with no download, also after a reboot; a card that needs room deletes
retired pictures, oldest first, before it says `sd_full`; the picture on screen is never
deleted; retired pictures go once RETIRED_DAYS have passed (the simulator's date follows the
test clock)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.frame.test_frame_app import FRAME, Rig
from tests.kit import framekit as kit
from tests.kit.broker import USERS, Mosquitto
from tests.kit.vmkit import card_bytes
from titano_app.frame.app import App
from titano_app.sim.device import SimDevice

DAY_MS = 86_400_000


@pytest.fixture
def rig(broker: Mosquitto, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(broker, tmp_path)
    yield r
    r.close()


def files(card: Path) -> dict[str, int]:
    """Every picture file on the card, listed or retired: name -> inode (the same file)."""
    return {p.name: p.stat().st_ino for p in card.rglob("*.bmp")}


def retired(card: Path) -> set[str]:
    return {p.name.split(".")[0] for p in (card / "r").rglob("*.bmp")}


def used(card: Path) -> int:
    return sum(p.stat().st_size for p in card.rglob("*") if p.is_file())


def limit(rig: Rig, pictures: int) -> None:
    """The card holds `pictures` pictures (besides the store's reserve), whatever their state."""
    size = card_bytes(pictures)

    def statvfs(_path: str) -> tuple[int, ...]:
        free = max(0, size - used(rig.card))
        return (1, 1, size, free, free, 0, 0, 0, 0, 255)

    rig.device.statvfs_hook = statvfs


def synced_events(rig: Rig) -> list[dict[str, object]]:
    rig.barrier()
    return [e for e in rig.events() if e["event"] == "synced"]


def test_a_manifest_that_drops_everything_then_brings_it_back_costs_nothing(rig: Rig) -> None:
    ids = [rig.add(n) for n in range(5)]
    rig.publish()
    rig.start()
    assert rig.synced()
    before = files(rig.card)
    assert len(before) == 5 and len(rig.server.requests) == 5
    everything, rig.pictures = dict(rig.pictures), {}
    rig.publish()
    assert rig.synced()  # the slideshow is empty at once ...
    assert rig.app is not None and rig.app.store.count() == 0
    assert files(rig.card) == before and retired(rig.card) == set(ids)  # ... the card is not
    assert synced_events(rig)[-1] == {"event": "synced", "added": 0, "removed": 5, "pages": 0}
    rig.start()  # a reboot in between: what is retired is on the card
    rig.pictures = everything
    rig.publish()
    assert rig.synced()
    assert len(rig.server.requests) == 5  # not one download
    assert files(rig.card) == before and retired(rig.card) == set()
    assert synced_events(rig)[-1] == {"event": "synced", "added": 5, "removed": 0, "pages": 1}
    assert rig.app.show.picture in ids


def test_the_picture_on_screen_is_never_deleted_when_the_card_needs_room(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [rig.add(n) for n in range(3)]
    rig.publish()
    app = rig.start()
    limit(rig, 3)
    assert rig.synced()
    deleted_on_screen: list[str] = []
    real_remove: Callable[[str], None] = os.remove

    def remove(path: str) -> None:
        shown = rig.device.shown
        if shown and Path(path).name == Path(shown[-1]).name:
            deleted_on_screen.append(path)
        real_remove(path)

    monkeypatch.setattr(os, "remove", remove)
    on_screen = app.show.picture
    assert on_screen in ids
    del rig.pictures[on_screen]
    new = rig.add(10)
    rig.publish()  # the card is full: the new picture needs the room of the one on screen
    assert rig.synced()
    assert deleted_on_screen == []
    assert app.show.picture != on_screen
    assert kit.card_pictures(rig.card) == set(rig.pictures) and new in rig.pictures
    assert retired(rig.card) == set()  # it went once the screen had moved on
    assert not [e for e in rig.events() if e["event"] == "error"]
    assert len(rig.server.requests) == 4


def test_a_full_card_evicts_the_oldest_retired_picture_before_saying_sd_full(rig: Rig) -> None:
    a, b, c, d = (rig.add(n) for n in range(4))
    rig.publish()
    app = rig.start()
    limit(rig, 4)
    assert rig.synced()
    del rig.pictures[a]
    rig.publish()
    assert rig.synced()
    rig.clock.advance(DAY_MS)  # B is retired a day after A
    del rig.pictures[b]
    rig.publish()
    assert rig.synced()
    assert retired(rig.card) == {a, b} and len(files(rig.card)) == 4
    e = rig.add(10)
    rig.publish()
    assert rig.synced()
    assert retired(rig.card) == {b}  # A, the oldest, made room for E
    assert kit.card_pictures(rig.card) == {c, d, e}
    f = rig.add(11)
    rig.publish()
    assert rig.synced()
    assert retired(rig.card) == set() and kit.card_pictures(rig.card) == {c, d, e, f}
    assert not [x for x in rig.events() if x["event"] == "error"]  # no sd_full so far
    rig.add(12)
    rig.publish()  # nothing retired left: now the card is full
    assert kit.tick_until(app, lambda: app.steps is None and app.live["sync"] == "error")
    rig.barrier()
    errors = [(x["code"], x["detail"]) for x in rig.events() if x["event"] == "error"]
    assert errors == [("sd_full", "1 listed pictures did not fit")]
    assert kit.card_pictures(rig.card) == {c, d, e, f} and app.live["pending"] == 1
    assert len(rig.server.requests) == 6


def test_retired_pictures_are_deleted_once_retired_days_have_passed(rig: Rig) -> None:
    a, b, c = (rig.add(n) for n in range(3))
    rig.publish()
    rig.start()
    assert rig.synced()
    del rig.pictures[a]
    rig.publish()
    assert rig.synced()
    rig.clock.advance(20 * DAY_MS)
    rig.settle(0.5)
    assert retired(rig.card) == {a}  # 20 days: still kept (30 by default)
    del rig.pictures[b]
    rig.publish()
    assert rig.synced()
    rig.clock.advance(11 * DAY_MS)  # A was retired 31 days ago, B 11
    app = rig.app
    assert app is not None
    assert kit.tick_until(app, lambda: retired(rig.card) == {b}), retired(rig.card)
    assert kit.card_pictures(rig.card) == {c}
    assert not (rig.card / "r" / str(rig.device.unix_time() // 86400 - 31)).exists()


def test_retired_days_comes_from_settings_toml(rig: Rig) -> None:
    a = rig.add(0)
    rig.add(1)
    rig.publish()
    app = start_with(rig, RETIRED_DAYS="2")
    assert app.store.retired.keep_days == 2
    assert rig.synced()
    del rig.pictures[a]
    rig.publish()
    assert rig.synced()
    assert retired(rig.card) == {a}
    rig.clock.advance(3 * DAY_MS)
    assert kit.tick_until(app, lambda: retired(rig.card) == set())
    for bad in ("0", "366", "a week"):
        with pytest.raises(ValueError, match=f"RETIRED_DAYS '{bad}'"):
            start_with(rig, RETIRED_DAYS=bad)


def start_with(rig: Rig, **extra: str) -> App:
    """The rig's frame booted with more settings.toml values."""
    settings = {**kit.frame_settings(FRAME, USERS[FRAME], rig.broker.port), **extra}
    rig.device = SimDevice(settings, rig.card, rig.tmp / "screen.png", clock=rig.clock)
    rig.app = App(rig.device, rig.clock)
    return rig.app

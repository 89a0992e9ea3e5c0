"""Faults while the frame syncs: broker restart, renderer down, Wi-Fi loss, a download cut
short, a process killed mid-download, a full card. Afterwards the sync completes, every picture
on the card is whole, and no listed picture was lost. Also: the shuffle through the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Mosquitto
from tests.test_frame_app import FRAME, Rig
from titano_app.frame import bmp
from titano_app.frame.app import RETRY_MS, App
from titano_app.sim import kit
from titano_app.sim.device import SimDevice


@pytest.fixture
def rig(broker: Mosquitto, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(broker, tmp_path)
    yield r
    r.close()


def whole(card: Path) -> bool:
    """Every picture file on the card is a complete BMP; no temp file left in the folders."""
    for path in (card / "p").glob("*/*/*"):
        data = path.read_bytes()
        if not path.name.endswith(".bmp") or bmp.check(data[: bmp.HEAD], len(data)) is not None:
            return False
    return True


def _partway(rig: Rig, n: int) -> App:
    for i in range(n):
        rig.add(i)
    rig.publish()
    app = rig.start()
    assert kit.tick_until(app, lambda: len(kit.card_pictures(rig.card)) >= 2, 20)
    return app


def test_broker_restarted_mid_sync(rig: Rig) -> None:
    app = _partway(rig, 8)
    rig.broker.restart()
    assert rig.synced(40)
    assert whole(rig.card)
    assert app.link.connects >= 2


def test_renderer_down_then_back(rig: Rig) -> None:
    rig.add(1)
    rig.add(2)
    rig.server.status = 502
    rig.publish()
    app = rig.start()
    assert kit.tick_until(app, lambda: app.steps is None and app.round is None and app.retry_ms > 0)
    assert kit.card_pictures(rig.card) == set()
    assert app.live["pending"] == 2 and app.live["sync"] == "error"
    rig.server.status = None
    rig.clock.advance(RETRY_MS)
    assert rig.synced()
    rig.settle()
    assert any(e.get("code") == "download_failed" for e in rig.events())


def test_wifi_lost_mid_sync_the_show_goes_on(rig: Rig) -> None:
    app = _partway(rig, 8)
    rig.device.flaky.down = True
    kit.tick_until(app, lambda: not app.link.connected, 10)
    assert rig.device.screen._icon in rig.device.screen._group  # the offline icon
    shown = app.show.shown
    rig.clock.advance(120_000)
    kit.tick_until(app, lambda: app.show.shown > shown, 5)
    assert app.show.shown > shown
    rig.device.flaky.down = False
    assert rig.synced(40)
    assert whole(rig.card)
    assert rig.device.screen._icon not in rig.device.screen._group


def test_cut_short_download_and_killed_process(rig: Rig) -> None:
    ids = [rig.add(i) for i in range(3)]
    rig.server.truncate = 50_000  # every body ends early: nothing may be committed
    rig.publish()
    app = rig.start()
    assert kit.tick_until(app, lambda: app.steps is None and app.retry_ms > 0)
    assert kit.card_pictures(rig.card) == set() and whole(rig.card)
    # killed mid-download: a half-written temp file is all that is left of it
    (rig.card / "tmp" / f"{ids[0]}.00000001.part").write_bytes(b"BM" + b"\0" * 1000)
    rig.server.truncate = None
    rig.start()  # the restart: leftovers go, the sync completes
    assert rig.synced()
    assert whole(rig.card)
    assert list((rig.card / "tmp").iterdir()) == []


def test_full_card_reports_sd_full_and_keeps_what_it_has(rig: Rig) -> None:
    ids = [rig.add(i) for i in range(2)]
    rig.publish()
    app = rig.start()
    assert rig.synced()
    rig.device.statvfs_hook = lambda path: (4096, 4096, 1000, 10, 10, 0, 0, 0, 0, 255)
    more = [rig.add(i) for i in range(10, 13)]
    rig.publish()
    assert kit.tick_until(app, lambda: app.steps is None and app.retry_ms > 0)
    rig.settle()
    assert kit.card_pictures(rig.card) == set(ids)
    assert [e.get("code") for e in rig.events() if e["event"] == "error"] == ["sd_full"]
    assert app.show.picture in ids
    rig.device.statvfs_hook = None
    rig.clock.advance(RETRY_MS)
    assert rig.synced()
    assert set(more) <= kit.card_pictures(rig.card)


class FastDevice(SimDevice):
    """Records what it would draw; no rendering (1,500 slides)."""

    def show(self, path: str) -> None:
        self.shown.append(path)


def test_shuffle_through_the_app_every_picture_once_per_cycle(tmp_path: Path) -> None:
    card = tmp_path / "card"
    source = tmp_path / "one.bmp"
    source.write_bytes(kit.picture_bytes(1))
    ids = sorted({kit.picture_id(i) for i in range(500)})
    for pid in ids:
        kit.card_file(card, pid, "00000001").hardlink_to(source)
    settings = kit.frame_settings(FRAME, "secret", 1)  # no broker: the show runs offline
    device = FastDevice(settings, card, tmp_path / "screen.png")
    clock = kit.Clock()
    app = App(device, clock)
    while len(device.shown) < 1500:
        clock.advance(61_000)
        app.tick(clock())
    names = [Path(p).name.split(".")[0] for p in device.shown[:1500]]
    for cycle in range(3):
        assert sorted(names[cycle * 500 : (cycle + 1) * 500]) == ids
    assert all(names[i] != names[i + 1] for i in range(len(names) - 1))

"""The removal brake against the real parts: Mosquitto, the fake Immich, the renderer process,
the bridge on a mocked clock and two simulated frames. An Immich that answers "nothing" for
longer than two full walks costs no card a file until a person confirms (MQTT command or CLI)
or the hold expires; a restart keeps the hold and its start; a change of the configured
sources goes out at once; a source that empties counts as a drop."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.kit import ROOT
from tests.kit.brakekit import FRAMES, Rig
from tests.kit.bridgekit import BASE, Bridge, retained
from tests.kit.broker import Mosquitto, free_port
from tests.kit.fakes.immich import FakeImmich
from tests.kit.mqttc import publish
from tools import photos

pytestmark = pytest.mark.slow
DAY = 86400.0
MANIFESTS = f"{BASE}/+/manifest/#"


@pytest.fixture
def rig(broker: Mosquitto, tmp_path: Path) -> Iterator[Rig]:
    with FakeImmich() as fake:
        r = Rig(broker, fake, tmp_path)
        yield r
        r.close()


def _manifests(broker: Mosquitto) -> dict[str, bytes]:
    return {t: p for t, p in retained(broker).items() if "/manifest" in t}


def _state(broker: Mosquitto) -> dict[str, Any]:
    return dict(
        json.loads(retained(broker, f"{BASE}/bridge/state", state=True)[f"{BASE}/bridge/state"])
    )


def _held_everywhere(rig: Rig, bridge: Bridge, cards: dict[str, set[str]]) -> dict[str, Any]:
    """Three more full walks find Immich empty: nothing is published, no card loses a file."""
    before = _manifests(rig.broker)
    for _ in range(3):
        bridge.walk()
    assert _manifests(rig.broker) == before
    rig.settle()
    for frame in FRAMES:
        assert rig.card(frame) == cards[frame]
    return _state(rig.broker)


def _filled(rig: Rig, n: int = 4, **options: Any) -> tuple[Bridge, list[str], dict[str, set[str]]]:
    ids = rig.fake.add_favorites(n)
    bridge = rig.bridge(**options)
    cards = {}
    for frame in FRAMES:
        assert rig.sync(frame, lambda card: len(card) == n), rig.log()
        cards[frame] = rig.card(frame)
    return bridge, ids, cards


@pytest.mark.parametrize("release", ["mqtt", "cli", "expiry"])
def test_an_empty_immich_wipes_no_card_until_confirmed_or_expired(rig: Rig, release: str) -> None:
    port = free_port()
    bridge, ids, cards = _filled(rig, removal_hold=DAY, metrics_listen=f"127.0.0.1:{port}")
    first = bridge.now
    for asset_id in ids:  # a restore into an empty library: every search answers nothing
        rig.fake.delete(asset_id)
    state = _held_everywhere(rig, bridge, cards)
    for frame in FRAMES:
        row = state["frames"][frame]
        assert row["held_removals"] == 4 and row["pictures"] == 4
        assert row["held_since"] == (first + timedelta(seconds=3600)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert row["held_until"] == (first + timedelta(seconds=3600 + DAY)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as resp:
        health = json.loads(resp.read())
    assert health["frames"]["hall"]["held_removals"] == 4
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
        metrics = resp.read().decode()
    assert 'titanoframe_bridge_held_removals{frame="kitchen"} 4' in metrics
    assert 'titanoframe_bridge_held_removal_until_seconds{frame="hall"} ' in metrics

    if release == "mqtt":  # Home Assistant's button: one frame
        publish(rig.broker, "homeassistant", f"{BASE}/bridge/cmd/confirm_removal", "kitchen")
        bridge.barrier()
        released = ["kitchen"]
    elif release == "cli":
        args = [sys.executable, "-m", "bridge", "--config", str(rig.path), "confirm-removal", "all"]
        cli = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert bridge.pump(lambda: cli.poll() is not None, timeout=30)
        out = cli.communicate()[0].decode()
        assert cli.returncode == 0, out
        released = list(FRAMES)
    else:  # a day after the drop was first seen, a full walk still finds it
        bridge.tick(DAY - 3 * 3600)
        bridge.walk()
        released = list(FRAMES)
    for frame in FRAMES:
        if frame in released:
            assert rig.sync(frame, lambda card: not card), rig.log()
        else:
            rig.settle()
            assert rig.card(frame) == cards[frame]
    state = _state(rig.broker)
    assert [f for f in FRAMES if state["frames"][f]["held_removals"] == 0] == released
    bridge.close()


def test_a_restart_keeps_the_hold_and_its_start(rig: Rig) -> None:
    bridge, ids, cards = _filled(rig, removal_hold=DAY)
    for asset_id in ids:
        rig.fake.delete(asset_id)
    since = _held_everywhere(rig, bridge, cards)["frames"]["kitchen"]["held_since"]
    later = bridge.now + timedelta(hours=5)
    bridge.close()
    bridge = Bridge(rig.config(removal_hold=DAY), now=later)
    bridge.step()
    state = _held_everywhere(rig, bridge, cards)
    assert state["frames"]["kitchen"]["held_since"] == since  # not reset by the restart
    bridge.tick(DAY - 8 * 3600)  # a day after it was first seen: the next walk releases it
    bridge.walk()
    assert rig.sync("kitchen", lambda card: not card), rig.log()
    bridge.close()


def test_a_drop_after_the_sources_changed_goes_out_at_once(rig: Rig) -> None:
    bridge, ids, _ = _filled(rig, removal_hold=DAY)
    bridge.close()
    album = rig.fake.add_album("Frame", ids[:1])
    rig.write_config("[{album: Frame}]")  # the person's own change: 4 pictures to 1
    bridge = rig.bridge(removal_hold=DAY)
    for frame in FRAMES:
        assert rig.sync(frame, lambda card: len(card) == 1), rig.log()
    assert _state(rig.broker)["frames"]["kitchen"]["held_removals"] == 0
    assert album
    bridge.close()


def test_the_demo_switched_from_sample_photos_to_immich_shows_immich_at_once(rig: Rig) -> None:
    photos.generate(rig.tmp / "photos", 6)
    rig.write_config(f"[{{folder: '{rig.tmp / 'photos'}'}}]")
    rig.restart_renderer()
    bridge = rig.bridge(removal_hold=DAY)
    for frame in FRAMES:
        assert rig.sync(frame, lambda card: len(card) == 6), rig.log()
    bridge.close()
    rig.fake.add_favorites(2)
    rig.write_config("[{favorites: true}]")  # `.env` now names an Immich
    rig.restart_renderer()
    bridge = rig.bridge(removal_hold=DAY)  # its first poll
    for frame in FRAMES:
        assert rig.sync(frame, lambda card: len(card) == 2), rig.log()
    bridge.close()


def test_a_source_that_empties_is_held_whatever_its_share(rig: Rig) -> None:
    ids = rig.fake.add_favorites(6)
    single = rig.fake.add_asset()
    album = rig.fake.add_album("Frame", [single])
    rig.write_config("[{favorites: true}, {album: Frame}]")
    bridge = rig.bridge(removal_hold=DAY)
    for frame in FRAMES:
        assert rig.sync(frame, lambda card: len(card) == 7), rig.log()
    cards = {frame: rig.card(frame) for frame in FRAMES}
    rig.fake.advance(1)
    rig.fake.album_remove(album, single)  # 1 of 7: under max_removal, but the album is empty
    bridge.step()
    state = _held_everywhere(rig, bridge, cards)
    assert state["frames"]["kitchen"]["held_removals"] == 1
    assert len(ids) == 6
    bridge.close()

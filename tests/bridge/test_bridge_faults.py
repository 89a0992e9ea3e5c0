"""Immich failing in every way it can, mid-poll and mid-walk, and the broker going away: the
frames' manifests stay exactly as they were, the bridge stays online and counts the error,
and the next good poll catches up. A mass removal waits for a full walk to confirm it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bridge.asset import Asset
from bridge.frames import FrameState, Mirror, published_pictures
from bridge.sources import Policy
from bridge.sync import Library
from common.config import Source
from tests.kit.bridgekit import BASE, START, Bridge, config, frame, manifest_of, retained
from tests.kit.broker import Mosquitto
from tests.kit.fakes.immich import FakeImmich

SEARCH = "/api/search/metadata"
STATUS = f"{BASE}/bridge/status"


@pytest.fixture
def fake() -> Iterator[FakeImmich]:
    with FakeImmich() as f:
        f.now = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
        yield f


def bridge_for(broker: Mosquitto, fake: FakeImmich, **kw: object) -> Bridge:
    cfg = config(broker, fake, **kw)  # type: ignore[arg-type]
    assert cfg.immich is not None
    # Long enough for a 1,000-asset page on a busy machine; the timeout fault waits longer.
    bridge = Bridge(replace(cfg, immich=replace(cfg.immich, timeout=2.0)))
    bridge.step()
    return bridge


FAULTS: dict[str, Callable[[FakeImmich, str], None]] = {
    "500": lambda fake, path: fake.fail_next(1, 500, path),
    "401": lambda fake, path: fake.fail_next(1, 401, path),
    "403": lambda fake, path: fake.fail_next(1, 403, path),
    "timeout": lambda fake, path: fake.delay(4.0, 1, path),
    "garbage": lambda fake, path: fake.garbage_next(1, path),
    "truncated": lambda fake, path: fake.truncate_next(1, path),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_failed_delta_poll_changes_nothing(broker: Mosquitto, fake: FakeImmich, fault: str) -> None:
    ids = fake.add_favorites(10)
    extra = fake.add_asset()
    bridge = bridge_for(broker, fake)
    before = retained(broker)
    fake.advance(1)
    fake.favorite(extra)
    fake.unfavorite(ids[0])
    FAULTS[fault](fake, SEARCH)
    bridge.step()
    after = retained(broker)
    assert after == before
    assert after[STATUS] == b"online"
    assert bridge.service.metrics.get("poll_errors_total", reason=_reason(fault)) == 1
    bridge.step()  # Immich is back: the changes arrive
    assert set(manifest_of(retained(broker))) == {*ids[1:], extra}
    bridge.close()


@pytest.mark.parametrize("fault", ["500", "timeout", "garbage", "401"])
def test_failed_full_walk_changes_nothing(broker: Mosquitto, fake: FakeImmich, fault: str) -> None:
    ids = fake.add_favorites(2500)  # three pages
    photos = fake.add_assets(2)
    fake.add_memory(START.date(), photos)
    sources = (Source("favorites", True), Source("memories", True))
    bridge = bridge_for(broker, fake, frames=[frame("kitchen", sources)])
    before = retained(broker)
    assert set(manifest_of(before)) == {*ids, *photos}
    fake.delete(ids[0])
    searches = fake.count(SEARCH)
    FAULTS[fault](fake, "/api/memories")  # after every favourites page came back fine
    bridge.walk()
    assert fake.count(SEARCH) - searches == 3
    assert retained(broker) == before
    bridge.walk()
    assert set(manifest_of(retained(broker))) == {*ids[1:], *photos}
    bridge.close()


def test_immich_down_at_start_is_not_fatal(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(5)
    cfg = config(broker, fake)
    fake.stop()
    bridge = Bridge(cfg)
    bridge.step()
    assert retained(broker)[STATUS] == b"online"
    assert bridge.service.metrics.get("poll_errors_total", reason="unreachable") == 1
    health = bridge.service.health()
    assert health["immich"] is False and "failed to connect" in health["last_error"]
    assert health["immich_reason"] == health["last_error"] and health["poll_errors"] == 1
    assert health["frames_configured"] == 1 and health["version"]
    fake._port = int(cfg.immich.url.rsplit(":", 1)[1])  # type: ignore[union-attr]
    fake.start()
    bridge.step()
    assert set(manifest_of(retained(broker))) == set(ids)
    health = bridge.service.health()
    assert health["immich"] is True and health["immich_reason"] is None
    assert health["poll_errors"] == 1  # counted since start, not reset by a good poll
    bridge.close()


def test_an_outage_is_logged_when_it_starts_and_ends_and_counted(
    broker: Mosquitto, fake: FakeImmich, caplog: pytest.LogCaptureFixture
) -> None:
    ids = fake.add_favorites(5)
    bridge = bridge_for(broker, fake)
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    fake.fail_next(10_000, status=503)  # 40 s away: the bridge polls every 30 s
    bridge.step()
    bridge.step()
    fake.clear_faults()
    bridge.step()
    bridge.step()
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in loud] == ["ERROR"]
    assert "503: Service Unavailable" in loud[0].getMessage()
    back = [r.getMessage() for r in caplog.records if "answers again" in r.getMessage()]
    assert back == ["Immich answers again after 60 s (2 polls failed)"]
    metrics = bridge.service.metrics
    assert metrics.get("immich_outages_total") == 1
    assert metrics.get("immich_outage_seconds_total") == 60
    assert metrics.get("poll_errors_total", reason="response") == 2
    assert metrics.get("immich_up") == 1
    assert set(manifest_of(retained(broker))) == set(ids)
    bridge.close()


def test_mass_unfavourite_is_held_until_a_full_walk(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(10)
    bridge = bridge_for(broker, fake)
    before = retained(broker)
    fake.advance(1)
    for asset_id in ids[:7]:
        fake.unfavorite(asset_id)
    bridge.step()
    assert retained(broker) == before
    assert bridge.service.metrics.get("held_removals", frame="kitchen") == 7
    bridge.step()
    assert retained(broker) == before
    bridge.walk()
    assert set(manifest_of(retained(broker))) == set(ids[7:])
    assert bridge.service.metrics.get("held_removals", frame="kitchen") == 0
    bridge.close()


def test_drop_seen_by_a_walk_needs_a_second_walk(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(10)
    bridge = bridge_for(broker, fake)
    before = retained(broker)
    for asset_id in ids[:7]:
        fake.delete(asset_id)
    bridge.walk()
    assert retained(broker) == before
    bridge.step()
    assert retained(broker) == before
    bridge.walk()
    assert set(manifest_of(retained(broker))) == set(ids[7:])
    bridge.close()


def test_held_drop_that_goes_away_is_never_published(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(10)
    bridge = bridge_for(broker, fake)
    before = retained(broker)
    fake.advance(1)
    for asset_id in ids[:8]:
        fake.unfavorite(asset_id)
    bridge.step()
    fake.advance(1)
    for asset_id in ids[:8]:
        fake.favorite(asset_id)
    bridge.step()
    bridge.walk()
    assert retained(broker) == before
    bridge.close()


def test_confirmed_drop_whose_publish_failed_goes_out_on_the_next_tick() -> None:
    # The decisions alone: a failed publish is a plan that was never settled.
    ids = [f"00000000-0000-4000-8000-{n:012d}" for n in range(10)]
    photos = [Asset(i, f"c{i}", "t", 800, 600, 0.0, True) for i in ids]
    state = FrameState(frame(), "http://renderer.test/v1/frames/kitchen/pictures/", 0.5)
    mirror = Mirror()

    def tick(lib: Library) -> int | None:
        """Evaluate and publish; None when nothing went out."""
        outcome = state.evaluate(lib, Policy(), mirror.retained(), mirror.version, 0)
        if outcome.plan is None:
            return None
        for step in outcome.plan.steps:
            mirror.put(step.shard, step.payload)
        state.settle(lib, mirror.version)
        return outcome.built.count if outcome.built else 0

    def library(kept: list[Asset], walks: int, generation: int) -> Library:
        members = {("favorites", ""): frozenset(a.id for a in kept)}
        return Library({a.id: a for a in kept}, members, walks=walks, generation=generation)

    assert tick(library(photos, 1, 1)) == 10
    dropped = library(photos[7:], 1, 2)
    assert state.evaluate(dropped, Policy(), mirror.retained(), mirror.version, 0).held == 7
    confirmed = library(photos[7:], 2, 3)
    outcome = state.evaluate(confirmed, Policy(), mirror.retained(), mirror.version, 0)
    assert outcome.plan is not None  # a walk confirmed it; this publish then fails
    assert tick(confirmed) == 3
    assert set(published_pictures(mirror.retained())) == set(ids[7:])


def test_small_removals_go_out_at_once(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(10)
    bridge = bridge_for(broker, fake, max_removal=0.5)
    fake.advance(1)
    for asset_id in ids[:5]:  # exactly half: not over the limit
        fake.unfavorite(asset_id)
    bridge.step()
    assert set(manifest_of(retained(broker))) == set(ids[5:])
    bridge.close()


def test_broker_restart_then_catch_up(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(10)
    extra = fake.add_asset()
    bridge = bridge_for(broker, fake)
    broker.stop()
    assert bridge.pump(lambda: not bridge.service.link.connected)
    fake.advance(1)
    fake.favorite(extra)
    bridge.step()  # nothing can be published; the change is kept for later
    assert bridge.service.health()["status"] == "degraded"
    broker.start()
    assert bridge.pump(lambda: bridge.service.link.connected, timeout=15)
    bridge.tick()
    held = retained(broker)
    assert set(manifest_of(held)) == {*ids, extra}
    assert held[STATUS] == b"online"
    bridge.close()


def _reason(fault: str) -> str:
    return {
        "500": "response",
        "401": "auth",
        "403": "auth",
        "timeout": "unreachable",
        "garbage": "response",
        "truncated": "response",
    }[fault]


def test_broker_that_lost_everything_gets_it_all_again(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(300)
    bridge = bridge_for(broker, fake)
    before = retained(broker, "#")
    broker.stop()
    for stored in (broker.workdir / "data").iterdir():
        stored.unlink()  # a broker without persistence forgets every retained message
    broker.start()
    assert bridge.pump(lambda: bridge.service.link.connected, timeout=15)
    bridge.tick()
    after = retained(broker, "#")
    assert after == before
    assert set(manifest_of(after)) == set(ids)
    bridge.close()

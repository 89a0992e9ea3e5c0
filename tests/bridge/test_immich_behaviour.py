"""The bridge against Immich as it really behaves: partner favourites, fresh uploads, stacks.

Fake Immich, real Mosquitto, the bridge driven by an injected clock, the manifest read back."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from common import manifest
from common.config import Source
from tests.kit.bridgekit import BASE, Bridge, Observer, config, frame, manifest_of, retained
from tests.kit.broker import Mosquitto
from tests.kit.fakes.immich import FakeImmich

FAKE_NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeImmich]:
    with FakeImmich() as f:
        f.now = FAKE_NOW
        yield f


def started(broker: Mosquitto, fake: FakeImmich, **kw: object) -> Bridge:
    bridge = Bridge(config(broker, fake, **kw))  # type: ignore[arg-type]
    bridge.step()  # the first poll is a full walk
    return bridge


def shown(broker: Mosquitto) -> set[str]:
    return set(manifest_of(retained(broker)))


def test_a_partners_favourite_stays_when_its_owner_edits_it(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    partner = fake.add_partner()
    mine = fake.add_favorites(4)
    theirs = fake.add_asset(favorite=True, owner=partner)
    bridge = started(broker, fake)
    assert shown(broker) == {*mine, theirs}

    fake.advance(1)
    fake.describe(theirs, "Our first holiday")  # the delta search now returns it
    bridge.step()
    assert shown(broker) == {*mine, theirs}
    bridge.close()


def test_a_partners_new_favourite_comes_and_goes_with_delta_polls(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    partner = fake.add_partner()
    mine = fake.add_favorites(4)
    theirs = fake.add_asset(owner=partner)
    bridge = started(broker, fake)
    assert shown(broker) == set(mine)

    fake.advance(1)
    fake.favorite(theirs)
    bridge.step()
    assert bridge.service.sync.lib.walks == 1  # a delta poll, not the next full walk
    assert shown(broker) == {*mine, theirs}

    fake.advance(1)
    fake.unfavorite(theirs)
    bridge.step()
    assert shown(broker) == set(mine)
    bridge.close()


def test_a_fresh_upload_is_published_once_when_immich_can_render_it(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    mine = fake.add_favorites(4)
    bridge = started(broker, fake)
    obs = Observer(broker, f"{BASE}/kitchen/manifest/#")
    obs.take()

    fake.advance(1)
    fresh = fake.add_asset(favorite=True, previewed=False)  # listed, but no preview yet
    bridge.step()
    assert shown(broker) == set(mine)

    fake.advance(1)
    fake.make_previews(fresh)  # the thumbhash appears and moves updatedAt
    bridge.step()
    bridge.step()
    held = manifest_of(retained(broker))
    asset = fake.asset(fresh)
    profile = manifest.profile_key(bridge.service.config.frames[0].image)
    assert held[fresh] == manifest.version(asset.checksum, asset.thumbhash, profile)
    pages = [p for _, p, _ in obs.take() if fresh.encode() in p]
    assert len(pages) == 1  # one version of it, ever
    bridge.close()


def test_a_stack_shows_its_primary_only_unless_a_source_asks_for_all(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    single = fake.add_favorites(2)
    burst = fake.add_favorites(3)
    fake.add_album("Bursts", burst)
    frames = [
        frame("kitchen"),  # favourites
        frame("hall", (Source("album", "Bursts", stacks="all"),)),
    ]
    bridge = started(broker, fake, frames=frames)
    assert shown(broker) == {*single, *burst}

    fake.advance(1)
    fake.stack(*burst)  # the first is the primary; the members' rows move
    bridge.step()
    assert bridge.service.sync.lib.walks == 1  # seen by a delta poll
    held = retained(broker)
    assert set(manifest_of(held)) == {*single, burst[0]}
    assert set(manifest_of(held, "hall")) == set(burst)

    bridge.walk()
    assert set(manifest_of(retained(broker))) == {*single, burst[0]}
    bridge.close()

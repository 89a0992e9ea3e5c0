"""The bridge keeps each frame's retained manifest in step with Immich: fake Immich, real
Mosquitto, the bridge driven by an injected clock, the result read back by an MQTT client."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from common import manifest
from common.config import Exclude, Source
from tests.kit.bridgekit import (
    BASE,
    Bridge,
    Observer,
    config,
    frame,
    manifest_of,
    retained,
    with_profile,
)
from tests.kit.broker import Mosquitto
from tests.kit.fakes.immich import FakeImmich

FAKE_NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)
MANIFEST = f"{BASE}/kitchen/manifest"


@pytest.fixture
def fake() -> Iterator[FakeImmich]:
    with FakeImmich() as f:
        f.now = FAKE_NOW
        yield f


def change(fake: FakeImmich) -> None:
    """Let Immich's clock move on, as it does between a poll and the next edit."""
    fake.advance(1)


def started(broker: Mosquitto, fake: FakeImmich, **kw: object) -> Bridge:
    bridge = Bridge(config(broker, fake, **kw))  # type: ignore[arg-type]
    bridge.step()  # the first poll is a full walk
    return bridge


def manifest_messages(obs: Observer) -> list[tuple[str, bytes, bool]]:
    return [m for m in obs.take() if m[0].startswith(MANIFEST)]


def test_favourite_added_and_removed_by_delta_polls(broker: Mosquitto, fake: FakeImmich) -> None:
    favourites = fake.add_favorites(20)
    other = fake.add_asset()
    bridge = started(broker, fake)
    assert set(manifest_of(retained(broker))) == set(favourites)
    obs = Observer(broker, f"{BASE}/#")
    obs.take()

    change(fake)
    fake.favorite(other)
    bridge.step()
    held = manifest_of(retained(broker))
    assert set(held) == {*favourites, other}
    # One page (width 0: "all") and the summary, both retained.
    assert [(t, r) for t, _, r in manifest_messages(obs)] == [
        (f"{MANIFEST}/all", True),
        (MANIFEST, True),
    ]

    change(fake)
    fake.unfavorite(favourites[0])
    bridge.step()
    assert set(manifest_of(retained(broker))) == {*favourites[1:], other}
    bridge.close()


def test_edit_changes_that_version_only(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(10)
    bridge = started(broker, fake)
    before = manifest_of(retained(broker))
    change(fake)
    fake.edit(ids[3])
    bridge.step()
    after = manifest_of(retained(broker))
    assert [i for i in ids if before[i] != after[i]] == [ids[3]]
    change(fake)
    fake.replace_file(ids[4])  # a new original: new checksum
    bridge.step()
    assert manifest_of(retained(broker))[ids[4]] != after[ids[4]]
    bridge.close()


def test_trash_leaves_at_once_and_restore_brings_it_back(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    ids = fake.add_favorites(10)
    bridge = started(broker, fake)
    change(fake)
    fake.trash(ids[0])
    bridge.step()
    assert set(manifest_of(retained(broker))) == set(ids[1:])
    change(fake)
    fake.restore(ids[0])
    bridge.step()
    assert set(manifest_of(retained(broker))) == set(ids)
    bridge.close()


def test_permanent_delete_is_caught_by_the_full_walk(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(10)
    bridge = started(broker, fake)
    change(fake)
    fake.delete(ids[0])
    bridge.step()  # a deleted row leaves no trace a delta poll could find
    assert ids[0] in manifest_of(retained(broker))
    bridge.walk()
    assert set(manifest_of(retained(broker))) == set(ids[1:])
    bridge.close()


def test_archived_photos_only_with_include_archived(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(10)
    archived = fake.add_asset(favorite=True, visibility="archive")
    bridge = started(broker, fake)
    assert set(manifest_of(retained(broker))) == set(ids)
    change(fake)
    fake.archive(ids[0])
    bridge.step()
    assert set(manifest_of(retained(broker))) == set(ids[1:])
    bridge.close()
    bridge = started(broker, fake, include_archived=True)
    assert set(manifest_of(retained(broker))) == {*ids, archived}
    bridge.close()


def test_partners_photos_can_be_left_out(broker: Mosquitto, fake: FakeImmich) -> None:
    mine = fake.add_favorites(6)
    partner = fake.add_asset(favorite=True, owner=fake.add_partner())
    bridge = started(broker, fake)
    assert set(manifest_of(retained(broker))) == {*mine, partner}
    bridge.close()
    bridge = started(broker, fake, include_partners=False)
    assert set(manifest_of(retained(broker))) == set(mine)
    bridge.close()


def test_album_by_name_and_by_id(broker: Mosquitto, fake: FakeImmich) -> None:
    photos = fake.add_assets(6)
    family = fake.add_album("Family", photos[:3])
    trips = fake.add_album("Trips", photos[3:5])
    frames = [
        frame("kitchen", (Source("album", "Family"),)),
        frame("hall", (Source("album", trips),)),
    ]
    bridge = started(broker, fake, frames=frames)
    held = retained(broker)
    assert set(manifest_of(held)) == set(photos[:3])
    assert set(manifest_of(held, "hall")) == set(photos[3:5])

    before = fake.count("/albums")
    fake.album_add(family, photos[5])
    searches = fake.count("/search/metadata")
    bridge.step()
    # One album listing, and only the changed album re-listed (plus the delta search).
    assert fake.count("/albums") - before == 1
    assert fake.count("/search/metadata") - searches == 2
    assert set(manifest_of(retained(broker))) == {*photos[:3], photos[5]}

    fake.album_remove(family, photos[0])
    bridge.step()
    assert set(manifest_of(retained(broker))) == {*photos[1:3], photos[5]}
    bridge.close()


def _rename_album(fake: FakeImmich, album_id: str, name: str) -> None:
    with fake.lock:
        fake.albums[album_id].name = name
        fake.albums[album_id].updated = fake.now
        fake.version += 1


def test_album_name_moved_to_another_listed_album_is_followed(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    photos = fake.add_assets(5)
    family = fake.add_album("Family", photos[:4])
    trips = fake.add_album("Trips", [*photos[:3], photos[4]])
    frames = [
        frame("kitchen", (Source("album", "Family"),)),
        frame("hall", (Source("album", trips),)),  # so the bridge lists Trips already
    ]
    bridge = started(broker, fake, frames=frames)
    assert set(manifest_of(retained(broker))) == set(photos[:4])
    # The name now points at an album whose members the bridge already holds: no member set
    # changes, only which one the kitchen's source names.
    _rename_album(fake, family, "Family 2019")
    _rename_album(fake, trips, "Family")
    bridge.step()
    assert set(manifest_of(retained(broker))) == {*photos[:3], photos[4]}
    assert set(manifest_of(retained(broker), "hall")) == {*photos[:3], photos[4]}
    bridge.close()


def test_person_source_follows_new_faces(broker: Mosquitto, fake: FakeImmich) -> None:
    alice = fake.add_person("Alice")
    photos = fake.add_assets(5)
    for p in photos[:2]:
        fake.add_face(p, alice)
    frames = [
        frame("kitchen", (Source("person", "Alice"),)),
        frame("hall", (Source("person", alice),)),
    ]
    bridge = started(broker, fake, frames=frames)
    assert set(manifest_of(retained(broker))) == set(photos[:2])
    fake.add_face(photos[4], alice)  # face tables move no timestamp on the photo
    bridge.step()  # a person set that fits one page is re-listed every poll
    held = retained(broker)
    assert set(manifest_of(held)) == set(manifest_of(held, "hall")) == {*photos[:2], photos[4]}
    bridge.close()


def test_tag_source_includes_child_tags(broker: Mosquitto, fake: FakeImmich) -> None:
    parent = fake.add_tag("frame")
    child = fake.add_tag("best", parent=parent)
    photos = fake.add_assets(4)
    fake.tag(photos[0], parent)
    fake.tag(photos[1], child)
    frames = [
        frame("kitchen", (Source("tag", "frame"),)),
        frame("hall", (Source("tag", "frame/best"),)),
    ]
    bridge = started(broker, fake, frames=frames)
    held = retained(broker)
    assert set(manifest_of(held)) == set(photos[:2])
    assert set(manifest_of(held, "hall")) == {photos[1]}
    fake.tag(photos[2], child)
    bridge.step()
    assert set(manifest_of(retained(broker))) == set(photos[:3])
    bridge.close()


def test_exclude_tag_hides_a_favourite(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(8)
    skip = fake.add_tag("frame-skip")
    frames = [frame("kitchen", exclude=(Exclude("tag", "frame-skip"),))]
    bridge = started(broker, fake, frames=frames)
    assert set(manifest_of(retained(broker))) == set(ids)
    fake.tag(ids[2], skip)
    bridge.step()
    assert set(manifest_of(retained(broker))) == set(ids) - {ids[2]}
    fake.untag(ids[2], skip)
    bridge.step()
    assert set(manifest_of(retained(broker))) == set(ids)
    bridge.close()


def test_memories_are_refreshed_at_local_midnight(broker: Mosquitto, fake: FakeImmich) -> None:
    photos = fake.add_assets(4, start=datetime(2019, 11, 24, 10, tzinfo=UTC))
    # The bridge's clock starts at 09:00 UTC on 23 Nov = 10:00 in Paris.
    fake.add_memory(date(2025, 11, 23), photos[:2])
    fake.add_memory(date(2025, 11, 24), photos[2:])
    frames = [frame("kitchen", (Source("memories", True), Source("favorites", True)))]
    bridge = started(broker, fake, frames=frames, timezone="Europe/Paris")
    assert set(manifest_of(retained(broker))) == set(photos[:2])
    bridge.tick(13 * 3600)  # 23:00 in Paris: still the 23rd
    assert set(manifest_of(retained(broker))) == set(photos[:2])
    before = fake.count("/memories")
    bridge.tick(3600)  # midnight in Paris
    assert fake.count("/memories") - before == 1
    assert set(manifest_of(retained(broker))) == set(photos[2:])
    bridge.close()


def test_profile_change_changes_every_version(broker: Mosquitto, fake: FakeImmich) -> None:
    ids = fake.add_favorites(12)
    cfg = config(broker, fake)
    bridge = Bridge(cfg)
    bridge.step()
    before = manifest_of(retained(broker))
    bridge.close()
    bridge = Bridge(with_profile(cfg, "kitchen", fit="cover"))
    bridge.step()
    after = manifest_of(retained(broker))
    assert set(after) == set(before) == set(ids)
    assert all(after[i] != before[i] for i in ids)
    bridge.close()


def test_restart_with_no_change_publishes_nothing(broker: Mosquitto, fake: FakeImmich) -> None:
    fake.add_favorites(400)  # several pages
    fake.add_assets(3)
    cfg = config(broker, fake)
    bridge = Bridge(cfg)
    bridge.step()
    bridge.close()
    obs = Observer(broker)
    obs.take()
    bridge = Bridge(cfg)
    bridge.step()  # full walk
    bridge.step()  # delta poll
    bridge.walk()  # and another full walk
    # Only the bridge's own status, announced once per read-back step (and its state, which
    # says when it last polled).
    seen = {(t, p) for t, p, _ in obs.take() if t != f"{BASE}/bridge/state"}
    assert seen == {(f"{BASE}/bridge/status", b"online")}
    assert bridge.service.metrics.get("manifest_publishes_total", frame="kitchen") == 0
    bridge.close()


def test_portrait_pairs_stay_stable(broker: Mosquitto, fake: FakeImmich) -> None:
    portraits = fake.add_favorites(6, width=3024, height=4032)
    landscape = fake.add_favorites(2)
    cfg = with_profile(config(broker, fake), "kitchen", pair_portraits=True)
    bridge = Bridge(cfg)
    bridge.step()
    before = manifest_of(retained(broker))
    pairs = [p for p in before if "+" in p]
    assert len(pairs) == 3 and {*landscape} <= set(before)
    assert {a for p in pairs for a in p.split("+")} == set(portraits)
    change(fake)
    fake.favorite(fake.add_asset(width=3024, height=4032))
    bridge.step()
    after = manifest_of(retained(broker))
    assert set(pairs) <= set(after)  # the existing pairs are kept
    bridge.close()


def test_30000_favourites_one_change_publishes_one_page(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    ids = fake.add_favorites(30_000)
    obs = Observer(broker, f"{BASE}/#")
    bridge = Bridge(config(broker, fake))
    walk_start = fake.count("/search/metadata")
    bridge.step()
    assert fake.count("/search/metadata") - walk_start == 30  # pages of 1000
    first = obs.take()
    assert all(len(p) <= manifest.PAGE_LIMIT for _, p, _ in first)
    held = retained(broker)
    assert set(manifest_of(held)) == set(ids)
    assert manifest.parse_summary(held[MANIFEST]).width == 2  # type: ignore[union-attr]

    requests = fake.count()
    bridge.step()
    assert fake.count() - requests <= 2
    assert manifest_messages(obs) == []

    change(fake)
    fake.edit(ids[12345])
    bridge.step()
    sent = manifest_messages(obs)
    shard = ids[12345][-2:]
    assert [t for t, _, _ in sent] == [f"{MANIFEST}/{shard}", MANIFEST]
    assert all(len(p) <= manifest.PAGE_LIMIT for _, p, _ in sent)
    bridge.close()


def test_memories_only_fetch_once_a_day(broker: Mosquitto, fake: FakeImmich) -> None:
    photos = fake.add_assets(2, start=datetime(2020, 11, 23, tzinfo=UTC))
    fake.add_memory(date(2025, 11, 23), photos)
    bridge = started(broker, fake, frames=[frame("kitchen", (Source("memories", True),))])
    before = fake.count("/memories")
    for _ in range(3):
        bridge.step()
    assert fake.count("/memories") == before
    bridge.close()

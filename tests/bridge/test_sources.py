"""Sources against the fake Immich (favourites, albums, people, tags, memories, the delta
search), folders on disk, and the pure steps after them: selection, versions, pictures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bridge.asset import Asset
from bridge.folders import folder_assets
from bridge.frames import FrameState, Mirror, Versions, pictures, published_pictures, select
from bridge.picture import needs_publish, parse_published, payload, state_picture, taken_text
from bridge.sources import (
    Lister,
    Policy,
    parse_asset,
    resolve_album,
    resolve_tag,
)
from bridge.sync import FAVORITES, Library, Sync, Wanted
from common import manifest
from common.config import Exclude, FrameConfig, ImageProfile, Source
from common.folderids import folder_asset_id
from common.immich import ImmichClient
from tests.kit.fakes.immich import FakeImmich

NOW = datetime(2025, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def fake() -> Iterator[FakeImmich]:
    with FakeImmich() as f:
        f.now = NOW
        yield f


def lister(fake: FakeImmich, page_size: int = 1000, **policy: Any) -> Lister:
    return Lister(ImmichClient(fake.url, fake.api_key), Policy(**policy), page_size)


def test_favourites_are_still_images_in_the_timeline(fake: FakeImmich) -> None:
    photos = fake.add_favorites(5)
    fake.add_asset(favorite=True, type="VIDEO")
    live = fake.add_asset(favorite=True, live=True)  # its video half is hidden
    archived = fake.add_asset(favorite=True, visibility="archive")
    fake.trash(photos[0])
    fake.add_asset()
    found = {a.id for a in lister(fake).favorites()}
    assert found == {*photos[1:], live}
    assert {a.id for a in lister(fake, include_archived=True).favorites()} == {*found, archived}


def test_search_pages_until_immich_says_stop(fake: FakeImmich) -> None:
    ids = fake.add_favorites(25)
    assets, pages = lister(fake, page_size=10).search({"isFavorite": True})
    assert {a.id for a in assets} == set(ids) and pages == 3
    bodies = [r.body for r in fake.requests if r.path == "/api/search/metadata"]
    assert [b["page"] for b in bodies] == [1, 2, 3]
    assert all(b["type"] == "IMAGE" and b["visibility"] == "timeline" for b in bodies)


def test_delta_search_sees_unfavourites_and_trash(fake: FakeImmich) -> None:
    ids = fake.add_favorites(4)
    since = fake.advance(60).timestamp()
    fake.unfavorite(ids[0])
    fake.trash(ids[1])
    fake.archive(ids[2])
    changed = {a.id: a for a in lister(fake).changed_since(since)}
    assert set(changed) == set(ids[:3])
    assert not changed[ids[0]].favorite
    assert changed[ids[1]].trashed
    assert changed[ids[2]].visibility == "archive"
    body = fake.requests[-1].body
    assert "isFavorite" not in body and body["withDeleted"] is True
    assert lister(fake).changed_since(fake.advance(1).timestamp()) == []


def test_members_of_album_person_and_tag(fake: FakeImmich) -> None:
    photos = fake.add_assets(6)
    album = fake.add_album("Family", photos[:2])
    alice = fake.add_person("Alice")
    fake.add_face(photos[2], alice)
    parent = fake.add_tag("frame")
    child = fake.add_tag("best", parent=parent)
    fake.tag(photos[3], parent)
    fake.tag(photos[4], child)
    source = lister(fake)
    assert {a.id for a in source.members("album", album)[0]} == set(photos[:2])
    assert {a.id for a in source.members("person", alice)[0]} == {photos[2]}
    assert {a.id for a in source.members("tag", parent)[0]} == {photos[3], photos[4]}


def test_memories_of_the_day(fake: FakeImmich) -> None:
    photos = fake.add_assets(3, start=datetime(2020, 11, 23, tzinfo=UTC))
    fake.add_memory(date(2025, 11, 23), photos[:2])
    fake.add_memory(date(2025, 11, 24), photos[2:])
    day = datetime(2025, 11, 23, 22, tzinfo=UTC)
    assert {a.id for a in lister(fake).memories(day)} == set(photos[:2])


def test_names_resolve_ids_first_then_names() -> None:
    albums = [
        {"id": "11111111-1111-4111-8111-111111111111", "albumName": "Family"},
        {"id": "22222222-2222-4222-8222-222222222222", "albumName": "Trips"},
    ]
    assert resolve_album(albums, "Trips") == albums[1]["id"]
    assert resolve_album(albums, albums[0]["id"].upper()) == albums[0]["id"]
    assert resolve_album(albums, "Nope") is None
    tags = [
        {"id": "33333333-3333-4333-8333-333333333333", "name": "best", "value": "frame/best"},
        {"id": "44444444-4444-4444-8444-444444444444", "name": "best", "value": "other/best"},
    ]
    assert resolve_tag(tags, "other/best") == tags[1]["id"]
    assert resolve_tag(tags, "best") == tags[0]["id"]


def test_parse_asset_skips_what_it_cannot_use() -> None:
    good = {"id": "55555555-5555-4555-8555-555555555555", "checksum": "c2hh", "thumbhash": "th",
            "fileCreatedAt": "2024-01-02T03:04:05.000Z", "updatedAt": "2025-01-01T00:00:00.500Z",
            "width": 4032, "height": 3024, "isFavorite": True, "visibility": "timeline",
            "type": "IMAGE", "ownerId": "me"}  # fmt: skip
    asset = parse_asset(good)
    assert asset is not None and asset.favorite
    assert asset.taken == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert parse_asset({**good, "id": "../etc"}) is None
    assert parse_asset({**good, "checksum": None}) is None


def test_policy_leaves_out_partners_only_when_asked() -> None:
    mine = Asset("a", "c", "t", 1, 1, 0, owner="me")
    theirs = Asset("b", "c", "t", 1, 1, 0, owner="partner")
    assert Policy(me="me").allows(theirs)
    assert not Policy(include_partners=False, me="me").allows(theirs)
    assert Policy(include_partners=False, me="me").allows(mine)
    assert not Policy().allows(Asset("c", "c", "t", 1, 1, 0, visibility="hidden"))


def test_policy_leaves_out_an_immich_photo_until_it_has_a_preview() -> None:
    uploading = Asset("a", "c", None, 1, 1, 0)
    assert not Policy().allows(uploading)
    assert Policy().allows(uploading.replace(thumbhash="t"))
    assert Policy().allows(uploading.replace(path="/photos/a.jpg"))  # folders have none


def _write(path: Path, size: tuple[int, int], orientation: int | None = None) -> None:
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.new("RGB", size, (10, 200, 30)).save(path, exif=exif)


def test_folder_size_cache_forgets_files_that_left(tmp_path: Path) -> None:
    from bridge import folders

    _write(tmp_path / "a.jpg", (60, 40))
    _write(tmp_path / "b.jpg", (60, 40))
    folder_assets(tmp_path)

    def cached() -> set[str]:
        return {k[0] for k in folders._SIZES if k[0].startswith(str(tmp_path))}

    assert cached() == {str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")}
    (tmp_path / "b.jpg").unlink()
    folder_assets(tmp_path)
    assert cached() == {str(tmp_path / "a.jpg")}


def test_folder_assets_have_ids_versions_and_upright_sizes(tmp_path: Path) -> None:
    _write(tmp_path / "wide.jpg", (60, 40))
    _write(tmp_path / "turned.jpg", (60, 40), orientation=6)  # shot rotated: upright is 40×60
    (tmp_path / ".hidden.jpg").write_bytes(b"x")
    found = {a.id: a for a in folder_assets(tmp_path)}
    assert set(found) == {folder_asset_id("wide.jpg"), folder_asset_id("turned.jpg")}
    assert (
        found[folder_asset_id("turned.jpg")].width,
        found[folder_asset_id("turned.jpg")].height,
    ) == (40, 60)
    assert found[folder_asset_id("wide.jpg")].path == str(tmp_path / "wide.jpg")
    assert folder_assets(tmp_path / "missing") == []


def _frame(**kw: object) -> FrameConfig:
    return FrameConfig(id="kitchen", sources=(Source("favorites", True),), **kw)  # type: ignore[arg-type]


def _lib(assets: list[Asset], **members: frozenset[str]) -> Library:
    lib = Library(
        assets={a.id: a for a in assets}, members={FAVORITES: frozenset(a.id for a in assets)}
    )
    for kind, ids in members.items():
        lib.ids[(kind, "skip")] = "tag-id"
        lib.members[(kind, "tag-id")] = ids
    return lib


def _asset(n: int, **kw: object) -> Asset:
    return Asset(f"{n:08x}-0000-4000-8000-000000000000", f"sum{n}", "th", 40, 30, n, **kw)  # type: ignore[arg-type]


def test_select_applies_excludes_and_the_policy() -> None:
    assets = [_asset(1), _asset(2), _asset(3, trashed=True), _asset(4, visibility="archive")]
    lib = _lib(assets, tag=frozenset({assets[1].id}))
    frame = _frame(exclude=(Exclude("tag", "skip"),))
    assert set(select(frame, lib, Policy())) == {assets[0].id}
    assert set(select(frame, lib, Policy(include_archived=True))) == {assets[0].id, assets[3].id}


def test_versions_change_with_checksum_thumbhash_and_profile() -> None:
    a = _asset(1)
    plain = Versions(manifest.profile_key(ImageProfile()))
    v = plain.of(a)
    assert plain.of(a) == v
    assert plain.of(a.replace(thumbhash="new")) != v
    assert plain.of(a.replace(checksum="other")) != v
    assert plain.of(a.replace(favorite=True, owner="other")) == v
    assert Versions(manifest.profile_key(ImageProfile(fit="cover"))).of(a) != v


def test_pairs_get_a_version_from_both_photos() -> None:
    tall = [
        Asset(f"{n:08x}-0000-4000-8000-000000000000", f"s{n}", None, 30, 40, n) for n in range(2)
    ]
    frame = _frame(image=ImageProfile(pair_portraits=True))
    found, taken = pictures(frame, {a.id: a for a in tall}, (), Versions("k"))
    (pid,) = found
    assert pid == f"{tall[0].id}+{tall[1].id}" and taken[pid] == 0


def test_frame_state_holds_a_big_drop_until_a_later_walk() -> None:
    assets = [_asset(n) for n in range(10)]
    state = FrameState(_frame(), "http://r/v1/frames/kitchen/pictures/", 0.5)
    mirror = Mirror()
    lib = _lib(assets)
    lib.walks, lib.generation = 1, 1
    out = state.evaluate(lib, Policy(), mirror.retained(), mirror.version, 0)
    assert out.plan is not None
    for step in out.plan.steps:
        mirror.put(step.shard, step.payload)
    assert len(published_pictures(mirror.retained())) == 10
    smaller = _lib(assets[:3])
    smaller.walks, smaller.generation = 1, 2
    held = state.evaluate(smaller, Policy(), mirror.retained(), mirror.version, 0)
    assert held.plan is None and held.held == 7
    smaller.walks = 2
    assert state.evaluate(smaller, Policy(), mirror.retained(), mirror.version, 0).plan is not None


def test_sync_without_changes_keeps_the_generation(fake: FakeImmich) -> None:
    fake.add_favorites(3)
    sync = Sync(Wanted(favorites=True), lister(fake), UTC, 3600)
    assert sync.poll(NOW)
    generation = sync.lib.generation
    assert not sync.poll(NOW + timedelta(seconds=30))
    assert sync.lib.generation == generation and sync.lib.walks == 1


def test_a_photo_is_one_id_string_whatever_holds_it(fake: FakeImmich) -> None:
    """The library, each source's members and the walks after the first share one string
    per photo (a 36-character id held once per holder would cost a library of 30,000 photos
    megabytes), without the interpreter's table of interned strings, which never shrinks."""
    ids = fake.add_favorites(6)
    fake.add_album("Trips", ids[2:] + fake.add_assets(2))
    wanted = Wanted(favorites=True, named=frozenset({("album", "Trips")}))
    sync = Sync(wanted, lister(fake, page_size=3), UTC, 3600)
    sync.poll(NOW)
    fake.advance(1)
    fake.edit(ids[3])
    sync.poll(NOW + timedelta(hours=2))  # a full walk, one photo edited
    lib = sync.lib
    held = {asset_id: a.id for asset_id, a in lib.assets.items()}
    assert len(held) == 8
    for members in lib.members.values():
        assert all(member is held[member] for member in members)
    # Not interned: interning a copy gives the copy back, not the library's string.
    assert not any(sys.intern("".join(list(a))) is a for a in held.values())


def test_the_delta_poll_asks_past_the_newest_change_seen(fake: FakeImmich) -> None:
    """The watermark is the newest `updatedAt` of the photos found (no photo keeps its own):
    the next delta search asks for changes a millisecond past it."""
    ids = fake.add_favorites(3)
    sync = Sync(Wanted(favorites=True), lister(fake, page_size=2), UTC, 3600)
    sync.poll(NOW)
    assert sync.lib.watermark == max(fake.assets[i].updated for i in ids).timestamp()
    fake.advance(7.25)
    fake.favorite(liked := fake.add_asset())
    sync.poll(NOW + timedelta(seconds=30))
    assert liked in sync.lib.members[FAVORITES]
    assert sync.lib.watermark == fake.assets[liked].updated.timestamp()
    sync.poll(NOW + timedelta(seconds=60))  # nothing new: the same watermark
    asked = [r.body["updatedAfter"] for r in fake.requests if "updatedAfter" in (r.body or {})]
    assert asked[-1] == (fake.assets[liked].updated + timedelta(milliseconds=1)).isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    assert sync.lib.watermark == fake.assets[liked].updated.timestamp()


def test_picture_payload_helpers() -> None:
    pid = "66666666-6666-4666-8666-666666666666"
    assert state_picture(b'{"picture": "%s"}' % pid.encode()) == pid
    assert state_picture(b'{"picture": null}') is None
    assert state_picture(b"garbage") is None
    body = payload(pid, "http://r/x.jpg?exp=1000000&sig=ab", [])
    shown = parse_published(body)
    assert shown is not None and shown.exp == 1_000_000
    assert needs_publish(shown, pid, now=0) is False
    assert needs_publish(shown, pid, now=999_000) is True  # about to expire
    assert needs_publish(shown, "other", now=0) is True
    assert taken_text("2024-06-01T10:00:00.000Z", "Asia/Tokyo") == "2024-06-01T19:00:00+09:00"
    assert taken_text("2024-06-01T10:00:00.000Z", "Not/AZone") == "2024-06-01T10:00:00+00:00"

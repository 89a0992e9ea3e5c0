"""The compact `Asset`: it reads, compares and copies like the frozen dataclass it replaced, and
what the bridge keeps per photo stays small (counted in bytes, not timed)."""

from __future__ import annotations

import base64
import gc
import pickle
import tracemalloc
import uuid
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from bridge.asset import Asset
from bridge.frames import Versions
from bridge.sources import Lister, Policy, parse_assets
from common import manifest
from common.config import ImageProfile
from common.immich import ImmichClient
from tests.kit.fakes.immich import FakeImmich

FIELDS: dict[str, Any] = {
    "id": "0000002a-0000-4000-8000-000000000000",
    "checksum": "aGVsbG8gd29ybGQhIQ==/+x",
    "thumbhash": "1QcSHQRnh493V4dIh4eXh1h4kJUI",
    "width": 4032,
    "height": 3024,
    "taken": 1700000000.25,
    "favorite": True,
    "visibility": "archive",
    "trashed": False,
    "owner": "me",
    "image": True,
    "path": None,
    "stacked": True,
}


@pytest.mark.parametrize("thumbhash", [None, "", "t", FIELDS["thumbhash"]])
@pytest.mark.parametrize("checksum", ["", "c", FIELDS["checksum"], "file:1700000000:12345"])
def test_every_field_reads_back_as_given(checksum: str, thumbhash: str | None) -> None:
    given = {**FIELDS, "checksum": checksum, "thumbhash": thumbhash}
    asset = Asset(**given)
    assert asset.fields() == given
    assert (asset.checksum, asset.thumbhash) == (checksum, thumbhash)
    assert repr(asset).startswith(f"Asset(id={FIELDS['id']!r}, checksum={checksum!r}")


def test_yes_no_fields_each_read_back_alone() -> None:
    for name in ("favorite", "trashed", "image", "stacked"):
        for value in (True, False):
            others = {"favorite": False, "trashed": False, "image": False, "stacked": False}
            asset = Asset(**{**FIELDS, **others, name: value})
            assert getattr(asset, name) is value
            assert [getattr(asset, o) for o in others if o != name] == [False] * 3


def test_equal_by_value_and_hashable_as_the_dataclass_was() -> None:
    one, two = Asset(**FIELDS), Asset(**FIELDS)
    assert one == two and hash(one) == hash(two) and one is not two
    assert len({one, two}) == 1
    changes = {"checksum": "x", "thumbhash": None, "width": 1, "taken": 0.0,
               "favorite": False, "owner": "", "path": "/p"}  # fmt: skip
    for name, other in changes.items():
        assert one.replace(**{name: other}) != one, name
    assert one != FIELDS


def test_frozen_copied_by_replace_and_pickled() -> None:
    asset = Asset(**FIELDS)
    with pytest.raises(FrozenInstanceError):
        asset.width = 1
    with pytest.raises(FrozenInstanceError):
        del asset.owner
    changed = asset.replace(favorite=False, thumbhash="new")
    assert changed.fields() == {**FIELDS, "favorite": False, "thumbhash": "new"}
    assert asset.favorite and asset.thumbhash == FIELDS["thumbhash"]  # the original is kept
    assert pickle.loads(pickle.dumps(asset)) == asset


def test_the_remembered_version_is_not_part_of_the_value() -> None:
    asset, twin = Asset(**FIELDS), Asset(**FIELDS)
    assert asset.remember("k", "0badc0de")
    assert asset.memo("k") == "0badc0de" and asset.memo("other") is None
    assert not asset.remember("other", "12345678")  # one profile's version only
    assert asset == twin and hash(asset) == hash(twin) and twin.memo("k") is None


def test_one_profile_keeps_no_table_and_another_gets_the_same_versions() -> None:
    assets = [Asset(**{**FIELDS, "id": str(uuid.UUID(int=n)), "checksum": f"c{n}"})
              for n in range(50)]  # fmt: skip
    plain = Versions(manifest.profile_key(ImageProfile()))
    cover = Versions(manifest.profile_key(ImageProfile(fit="cover")))
    for versions in (plain, cover, plain, cover):  # each asked twice, alternately
        for a in assets:
            assert versions.of(a) == manifest.version(a.checksum, a.thumbhash, versions.profile_key)
    assert len(plain._known) == 0  # remembered in the assets themselves
    assert len(cover._known) == len(assets)
    edited = assets[0].replace(thumbhash="edited")
    assert cover.of(edited) == manifest.version(edited.checksum, "edited", cover.profile_key)


def _dto(n: int) -> dict[str, Any]:
    """A search result as Immich 3.1 sends it, with the fields the bridge reads and more."""
    stamp = f"2024-05-{n % 28 + 1:02d}T10:{n % 60:02d}:00.000Z"
    return {
        "id": str(uuid.UUID(int=n + 1)),
        "checksum": base64.b64encode(n.to_bytes(20, "big")).decode(),
        "thumbhash": base64.b64encode(n.to_bytes(21, "big")).decode(),
        "width": 4032, "height": 3024, "fileCreatedAt": stamp, "localDateTime": stamp,
        "updatedAt": stamp, "isFavorite": True, "isTrashed": False, "type": "IMAGE",
        "visibility": "timeline", "ownerId": "7e57c0de-0000-4000-8000-000000000000",
        "originalFileName": f"IMG_{n:05d}.JPG", "originalPath": f"/upload/IMG_{n:05d}.JPG",
    }  # fmt: skip


def _small_blocks(snapshot: tracemalloc.Snapshot) -> int:
    # Objects, not tables: a dict or set table is one big block whose size steps with the
    # interpreter's own tables (the interned strings), whatever ran before this test.
    return sum(t.size for t in snapshot.traces if t.size < 4096)


def test_a_photo_costs_under_400_bytes_with_its_version() -> None:
    """The objects the bridge holds per photo for a library and one render profile: the
    asset, its strings and numbers, and its version. The frozen dataclass, with two strings
    and a version table of tuples, held about 550."""
    count = 5000
    versions = Versions(manifest.profile_key(ImageProfile()))
    gc.collect()
    tracemalloc.start()
    before = _small_blocks(tracemalloc.take_snapshot())
    kept = []
    for start in range(0, count, 1000):  # page by page, as a walk reads them
        page = [_dto(n) for n in range(start, start + 1000)]
        assets = parse_assets(page)
        for a in assets:
            versions.of(a)
        kept.extend(assets)
        del page, assets
    gc.collect()
    held = _small_blocks(tracemalloc.take_snapshot()) - before
    tracemalloc.stop()
    assert len(kept) == count
    assert held / count < 400, held / count


def test_a_walk_of_an_unchanged_library_answers_with_the_photos_held() -> None:
    with FakeImmich() as fake, ImmichClient(fake.url, fake.api_key) as client:
        fake.add_favorites(30)
        lister = Lister(client, Policy(), page_size=10)
        first = {a.id: a for a in lister.favorites()}
        lister.known = first
        fake.favorite(fake.add_asset())  # one photo more: the rest is unchanged
        again = lister.favorites()
    assert len(again) == 31
    assert sum(a is first.get(a.id) for a in again) == 30

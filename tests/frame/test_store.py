"""The SD card store: layout, crash-safe commits, counting, room, sync record and settings."""

from __future__ import annotations

import os
import random
import struct
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from renderer import bmp as renderer_bmp
from titano_app.frame import card, manifest
from titano_app.frame.manifest import ADD, REMOVE, REPLACE
from titano_app.frame.store import Store, StoreError

SMALL = (4, 2)  # most tests use a tiny "screen" so pictures are a few bytes


def make_bmp(width: int, height: int, bpp: int = 8, top_down: bool = False) -> bytes:
    """A minimal BMP in the renderer's layout: 40-byte header, palette or RGB565 masks."""
    stride = (width * bpp // 8 + 3) & ~3
    extra = 1024 if bpp == 8 else 12 if bpp == 16 else 0
    offset = 54 + extra
    size = offset + stride * height
    compression = 3 if bpp == 16 else 0
    h = -height if top_down else height
    head = struct.pack("<2sIHHI", b"BM", size, 0, 0, offset)
    head += struct.pack("<IiiHHIIiiII", 40, width, h, 1, bpp, compression, 0, 0, 0, 0, 0)
    if bpp == 16:
        head += struct.pack("<3I", 0xF800, 0x07E0, 0x001F)
    else:
        head += bytes(extra)
    return head + bytes(stride * height)


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def fake_statvfs(free: int) -> Callable[[str], tuple[int, ...]]:
    return lambda _path: (4096, 4096, 1 << 20, free // 4096, free // 4096, 0, 0, 0, 0, 255)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(str(tmp_path / "sd"), statvfs=fake_statvfs(1 << 30), screen=SMALL, reserve=0)
    s.boot()
    return s


def download(store: Store, pid: str, ver: str, data: bytes) -> None:
    with open(store.temp_path(pid, ver), "wb") as f:
        f.write(data)


def add(store: Store, pid: str, ver: str = "00000001") -> str:
    data = make_bmp(*SMALL)
    download(store, pid, ver, data)
    return store.commit(pid, ver, len(data))


# -- commit


def test_commit_puts_the_picture_in_its_tail_folder_and_lead_leaf(
    store: Store, tmp_path: Path
) -> None:
    pid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    pair = pid + "+" + "11111111-2222-4333-8444-555555555555"
    assert add(store, pid) == str(tmp_path / "sd/p/01/3" / (pid + ".00000001.bmp"))
    add(store, pair, "0000abcd")
    assert os.listdir(tmp_path / "sd/p/01") == ["3"]
    assert sorted(os.listdir(tmp_path / "sd/p/01/3")) == [
        pair + ".0000abcd.bmp",
        pid + ".00000001.bmp",
    ]
    assert os.listdir(tmp_path / "sd/tmp") == []
    assert store.count() == 2


def test_truncated_download_is_never_committed(store: Store, tmp_path: Path) -> None:
    pid = new_id(random.Random(1))
    data = make_bmp(*SMALL)
    download(store, pid, "00000001", data[:-3])

    with pytest.raises(StoreError) as caught:
        store.commit(pid, "00000001", len(data))

    assert caught.value.code == "download_failed"
    assert f"got {len(data) - 3} of {len(data)} bytes" in caught.value.detail
    assert store.count() == 0
    assert store.find(pid) is None
    assert os.listdir(tmp_path / "sd/tmp") == []


def test_truncation_is_caught_by_the_header_without_a_length(store: Store) -> None:
    pid = new_id(random.Random(2))
    download(store, pid, "00000001", make_bmp(*SMALL)[:-1])
    with pytest.raises(StoreError, match="BMP says"):
        store.commit(pid, "00000001")
    assert store.count() == 0


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (make_bmp(8, 2), "picture is 8x2"),
        (make_bmp(*SMALL, top_down=True), "top-down"),
        (make_bmp(*SMALL, bpp=24), "24-bit"),
        (b"<html>gateway timeout</html>", "not a BMP"),
    ],
)
def test_wrong_bmp_is_rejected_and_nothing_changes(store: Store, data: bytes, why: str) -> None:
    rng = random.Random(3)
    keep = new_id(rng)
    add(store, keep)
    pid = new_id(rng)
    download(store, pid, "00000002", data)
    with pytest.raises(StoreError) as caught:
        store.commit(pid, "00000002", len(data))
    assert caught.value.code == "download_failed"
    assert why in caught.value.detail
    assert store.count() == 1
    assert store.find(keep) == "00000001"


def test_16_bit_555_is_rejected(store: Store) -> None:
    data = bytearray(make_bmp(*SMALL, bpp=16))
    struct.pack_into("<I", data, 58, 0x03E0)
    pid = new_id(random.Random(4))
    download(store, pid, "00000001", bytes(data))
    with pytest.raises(StoreError, match="RGB565"):
        store.commit(pid, "00000001", len(data))


def test_missing_temp_file_is_a_failed_download(store: Store) -> None:
    with pytest.raises(StoreError) as caught:
        store.commit(new_id(random.Random(5)), "00000001", 100)
    assert caught.value.code == "download_failed"


@pytest.mark.parametrize("fmt", ["bmp8", "bmp16"])
def test_renderer_pictures_are_accepted_at_full_size(tmp_path: Path, fmt: str) -> None:
    store = Store(str(tmp_path), statvfs=fake_statvfs(1 << 30))
    store.boot()
    data = renderer_bmp.encode(Image.new("RGB", (480, 320), (200, 40, 90)), fmt)
    assert len(data) == manifest.FORMATS[fmt]
    pid = new_id(random.Random(6))
    download(store, pid, "00000001", data)
    store.commit(pid, "00000001", len(data))
    assert store.find(pid) == "00000001"


def test_committing_the_same_picture_again_replaces_it(store: Store) -> None:
    pid = new_id(random.Random(7))
    add(store, pid)
    add(store, pid)
    assert store.count() == 1


# -- boot


def test_boot_removes_leftovers_of_an_interrupted_write(tmp_path: Path) -> None:
    root = tmp_path / "sd"
    first = Store(str(root), statvfs=fake_statvfs(1 << 30), screen=SMALL)
    first.boot()
    rng = random.Random(8)
    kept = new_id(rng)
    add(first, kept)
    half = new_id(rng)
    download(first, half, "00000001", make_bmp(*SMALL)[:10])  # power lost mid-download
    (root / "settings.json.tmp").write_bytes(b'{"bright')
    (root / "p" / "synced.tmp").write_bytes(b"syn")

    again = Store(str(root), statvfs=fake_statvfs(1 << 30), screen=SMALL)
    assert again.boot() == 1

    assert os.listdir(root / "tmp") == []
    assert not (root / "settings.json.tmp").exists()
    assert not (root / "p" / "synced.tmp").exists()
    assert again.find(kept) == "00000001" and again.find(half) is None


def test_boot_on_a_missing_card_is_a_store_error(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "no" / "such" / "card"))
    with pytest.raises(StoreError) as caught:
        store.boot()
    assert caught.value.code == "sd_error"


# -- enumeration


def test_pictures_are_numbered_by_folder_then_id(store: Store) -> None:
    rng = random.Random(9)
    pictures = [new_id(rng) for _ in range(40)]
    single = pictures[0]
    pictures.append(single + "+" + new_id(rng))  # sorts after its first id, unlike file names
    for pid in pictures:
        add(store, pid)
    expected = sorted(pictures, key=lambda p: (p[34:36], p))

    assert store.count() == 41
    assert [store.nth(i) for i in range(41)] == [(p, "00000001") for p in expected]
    assert [store.index_of(p) for p in expected] == list(range(41))
    assert store.nth(41) is None and store.nth(-1) is None
    assert sum(store.count_per_dir()) == 41
    folder = single[34:36]
    assert [p for p, _ in store.held(folder)] == [p for p in expected if p[34:36] == folder]


def test_a_folder_is_walked_in_id_order_across_its_leaves(store: Store) -> None:
    rng = random.Random(12)
    pictures = [lead + new_id(rng)[1:34] + "7e" for lead in "f0a3c" for _ in range(3)]
    pictures.append(pictures[0] + "+" + new_id(rng))
    for pid in pictures:
        add(store, pid)
    expected = sorted(pictures)
    assert store.count() == 16 and store.count_per_dir()[0x7E] == 16
    assert [p for p, _ in store.held("7e")] == expected
    first = sum(store.count_per_dir()[:0x7E])
    assert [store.nth(first + i) for i in range(16)] == [(p, "00000001") for p in expected]
    assert [store.index_of(p) for p in expected] == [first + i for i in range(16)]


def test_delete_is_counted_and_harmless_twice(store: Store) -> None:
    pid = new_id(random.Random(10))
    add(store, pid)
    assert store.delete(pid, "00000001")
    assert not store.delete(pid, "00000001")
    assert store.count() == 0 and store.rescan() == 0
    assert store.index_of(pid) is None


def test_foreign_files_on_the_card_are_ignored(store: Store, tmp_path: Path) -> None:
    folder = tmp_path / "sd/p/01"
    (folder / "3").mkdir(parents=True)
    for where in (folder, folder / "3"):
        (where / "._3f2504e0-4f89-41d3-9a0c-0305e82c3301.00000001.bmp").write_bytes(b"x")
        (where / "notes.txt").write_bytes(b"x")
    (folder / "x").mkdir()
    assert store.rescan() == 0


@pytest.mark.parametrize(
    "foreign",
    [
        "3F2504E0-4F89-41D3-9A0C-0305E82C3301.00000001.bmp",  # upper case
        "3zzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzz01.00000001.bmp",  # not hex
        "3f2504e0x4f89x41d3x9a0cx0305e82c3301.00000001.bmp",  # no dashes
        "3f2504e0-4f89-41d3-9a0c-0305e82c3301.0000000G.bmp",  # version not hex
        "3f2504e0-4f89-41d3-9a0c-0305e82c3301.00000001xbmp",
        "3f2504e0-4f89-41d3-9a0c-0305e82c3301x3f2504e0-4f89-41d3-9a0c-0305e82c3301.00000001.bmp",
        "3f2504e0-4f89-41d3-9a0c-0305e82c3301+3F2504E0-4F89-41D3-9A0C-0305E82C3301.00000001.bmp",
    ],
)
def test_a_foreign_file_of_a_pictures_length_in_a_leaf_is_ignored(
    store: Store, tmp_path: Path, foreign: str
) -> None:
    pictures = ["3f2504e0-4f89-41d3-9a0c-0305e82c3301", "3f9aa1b2-0000-4000-8000-00000000aa01"]
    for pid in pictures:
        add(store, pid)
    leaf = tmp_path / "sd/p/01/3"
    (leaf / foreign).write_bytes(make_bmp(*SMALL))
    first = sum(store.count_per_dir()[:1])

    assert store.rescan() == 2 and store.count_per_dir()[1] == 2
    assert [store.nth(first + i) for i in range(3)] == [
        (pictures[0], "00000001"),
        (pictures[1], "00000001"),
        None,
    ]
    assert [store.index_of(p) for p in pictures] == [first, first + 1]
    assert list(store.held("01")) == [(p, "00000001") for p in pictures]
    assert store.find(pictures[0]) == "00000001"
    assert (leaf / foreign).exists()  # not ours to delete


def test_boot_moves_a_one_level_card_into_leaves_and_keeps_everything(tmp_path: Path) -> None:
    """A card written by the older layout, <root>/p/<tail>/<file>: every picture is kept (moved,
    not downloaded again), numbered as before, and the sync record still holds."""
    root = tmp_path / "sd"
    rng = random.Random(13)
    pictures = [new_id(rng) for _ in range(30)] + [new_id(rng)[:34] + "01" for _ in range(5)]
    pictures.append(pictures[-1] + "+" + new_id(rng))
    data = make_bmp(*SMALL)
    for pid in pictures:
        folder = root / "p" / pid[34:36]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{pid}.00000001.bmp").write_bytes(data)
    (root / "p" / "01" / pictures[30][0]).mkdir()  # a leaf that exists already
    page = "".join(f"{p} 00000001\n" for p in sorted(pictures)).encode()
    Store(str(root)).record.mark("all", manifest.crc_hex(page))

    store = Store(str(root), statvfs=fake_statvfs(1 << 30), screen=SMALL)
    assert store.boot() == len(pictures)

    expected = sorted(pictures, key=lambda p: (p[34:36], p))
    assert [store.nth(i) for i in range(len(pictures))] == [(p, "00000001") for p in expected]
    assert all(Path(store.path(p, "00000001")).read_bytes() == data for p in pictures)
    assert not list((root / "p").glob("*/*.bmp"))
    assert store.record.get("all") == manifest.crc_hex(page)
    for tail in manifest.shard_dirs("all"):
        assert list(manifest.diff_page(page, store.held(tail), tail)) == []


# -- room


def test_free_space_comes_from_statvfs(tmp_path: Path) -> None:
    store = Store(str(tmp_path), statvfs=fake_statvfs(10 << 20), reserve=1 << 20)
    assert store.free_bytes() == 10 << 20
    store.ensure_room(9 << 20)
    store.ensure_room(307266)
    with pytest.raises(StoreError) as caught:
        store.ensure_room(10 << 20)
    assert caught.value.code == "sd_full"
    assert "10 MB free" in caught.value.detail


def test_real_statvfs_works_on_this_system(tmp_path: Path) -> None:
    assert Store(str(tmp_path)).free_bytes() > 0


# -- sync record


def test_sync_record_remembers_pages_per_width(store: Store) -> None:
    record = store.record
    assert record.get("3f") is None
    record.mark("3f", "1a2b3c4d")
    record.mark("00", manifest.EMPTY)
    assert record.get("3f") == "1a2b3c4d"
    assert record.get("00") == manifest.EMPTY
    assert record.get("3e") is None
    assert record.get("f") is None  # another width knows nothing

    record.mark("f", "c0ffee00")  # the manifest changed width: the old slots are gone

    assert record.get("f") == "c0ffee00"
    assert record.get("3f") is None
    record.reset(1)
    assert record.get("f") is None
    assert os.path.getsize(record.path) == 8 + 256 * 8


def test_damaged_sync_record_only_means_pages_are_diffed_again(store: Store) -> None:
    store.record.mark("all", "1a2b3c4d")
    Path(store.record.path).write_bytes(b"synced0\n1a2b")  # torn
    assert store.record.get("all") is None
    store.record.mark("all", "1a2b3c4d")
    assert store.record.get("all") == "1a2b3c4d"


# -- settings


def test_settings_round_trip_and_defaults(store: Store, tmp_path: Path) -> None:
    assert card.load_settings(store.root)["interval"] == 60
    values = card.load_settings(store.root)
    values.update(brightness=20, paused=True, interval=3600)
    card.save_settings(store.root, values)
    assert card.load_settings(str(tmp_path / "sd")) == values
    assert not (tmp_path / "sd/settings.json.tmp").exists()


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"\xff", b"[]", b'{"brightness": 900, "paused": "yes", "interval": 30}'],
)
def test_damaged_settings_fall_back_per_value(store: Store, tmp_path: Path, content: bytes) -> None:
    (tmp_path / "sd/settings.json").write_bytes(content)
    loaded = card.load_settings(store.root)
    assert loaded["brightness"] == 60 and loaded["paused"] is False
    assert loaded["interval"] == (30 if b"interval" in content else 60)


# -- a sync, as the app will do it


def test_a_page_synced_onto_the_card_diffs_to_nothing(store: Store) -> None:
    rng = random.Random(11)
    old = [new_id(rng) for _ in range(30)]
    for pid in old:
        add(store, pid)
    listed = {pid: "00000001" for pid in old[:20]}
    listed[old[0]] = "00000002"
    listed.update({new_id(rng): "00000003" for _ in range(15)})
    page = "".join(f"{p} {listed[p]}\n" for p in sorted(listed)).encode()
    manifest.check_page(page, "all")

    counts = {ADD: 0, REMOVE: 0, REPLACE: 0}
    for tail in manifest.shard_dirs("all"):
        for op, pid, ver in manifest.diff_page(page, store.held(tail), tail):
            counts[op] += 1
            if op == ADD:
                add(store, pid, ver)
            else:
                store.delete(pid, ver)
    store.record.mark("all", manifest.crc_hex(page))

    assert counts == {ADD: 16, REMOVE: 10, REPLACE: 1}
    assert store.count() == len(listed)
    for tail in manifest.shard_dirs("all"):
        assert list(manifest.diff_page(page, store.held(tail), tail)) == []
    assert store.record.get("all") == manifest.crc_hex(page)

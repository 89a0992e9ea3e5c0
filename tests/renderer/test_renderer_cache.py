"""The renderer's disk cache on a real filesystem: keys, atomic writes, LRU order, restarts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.config import ImageProfile
from renderer import cache as cache_mod
from renderer.cache import (
    CacheKey,
    DiskCache,
    entry_path,
    key_from_path,
    plan_eviction,
    profile_key,
)

A = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
B = "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"


def key(pid: str = A, version: str = "0000000a", ext: str = "bmp") -> CacheKey:
    return CacheKey(profile_key(ImageProfile()), pid, version, ext)


def test_profile_key_follows_what_changes_pixels() -> None:
    base = ImageProfile(format="bmp8", fit="blur", caption="{city}")
    assert profile_key(base) == profile_key(ImageProfile("bmp8", "blur", False, "{city}"))
    # Pairing decides which ids exist, not how one renders.
    assert profile_key(base) == profile_key(ImageProfile("bmp8", "blur", True, "{city}"))
    others = [
        ImageProfile("bmp16", "blur", False, "{city}"),
        ImageProfile("bmp8", "cover", False, "{city}"),
        ImageProfile("bmp8", "blur", False, None),
    ]
    assert len({profile_key(p) for p in [base, *others]}) == 4


def test_entry_paths_round_trip_and_refuse_escapes() -> None:
    for k in (key(), key(f"{A}+{B}", "ffffffff", "jpg")):
        assert key_from_path(entry_path(k)) == k
    assert entry_path(key()).endswith(f"/5b/{A}.0000000a.bmp")
    hostile = [
        key("../../etc/passwd"),
        key(A, "../../x"),
        key(A, "0000000A"),
        key(A, ext="png"),
        CacheKey("../" + "0" * 9, A, "0000000a", "bmp"),
    ]
    for k in hostile:
        with pytest.raises(ValueError):
            entry_path(k)
    for rel in ("x", "a/b/c", f"{key().profile}/5b/{A}.0000000a.bmp.tmp", "../x/y"):
        assert key_from_path(rel) is None


def test_plan_eviction_drops_oldest_first_and_keeps_the_newest() -> None:
    k = [key(version=f"0000000{i}") for i in range(4)]
    assert plan_eviction([(k[0], 10), (k[1], 10), (k[2], 10)], 25) == [k[0]]
    assert plan_eviction([(k[0], 10), (k[1], 10)], 100) == []
    assert plan_eviction([(k[0], 10), (k[1], 50)], 20) == [k[0]]  # newest kept, even alone
    assert plan_eviction([], 0) == []


def test_put_is_atomic_and_survives_a_restart(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 10_000)
    c.load()
    path = c.put(key(), b"x" * 100)
    assert path.read_bytes() == b"x" * 100
    assert c.lookup(key()) == path
    assert c.lookup(key(version="0000000b")) is None
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left

    again = DiskCache(tmp_path, 10_000)
    again.load()
    assert again.lookup(key()) == path
    assert (len(again), again.total_bytes) == (1, 100)


def test_load_cleans_up_interrupted_writes(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 10_000)
    good = c.put(key(), b"good")
    (good.parent / ".tmp-abc123").write_bytes(b"half")
    empty = c.path(key(B))
    empty.parent.mkdir(parents=True, exist_ok=True)
    empty.write_bytes(b"")
    (good.parent / "stranger.txt").write_text("left alone")

    fresh = DiskCache(tmp_path, 10_000)
    fresh.load()
    assert sorted(p.name for p in good.parent.iterdir()) == [good.name, "stranger.txt"]
    assert not empty.exists()
    assert len(fresh) == 1


def test_lru_evicts_least_recently_used(tmp_path: Path) -> None:
    clock = [1_000_000.0]
    c = DiskCache(tmp_path, 300, clock=lambda: clock[0])
    c.load()
    keys = [key(version=f"0000000{i}") for i in range(4)]
    for k in keys[:3]:
        c.put(k, b"x" * 100)
        clock[0] += 1
    assert c.lookup(keys[0]) is not None  # now the most recent
    c.put(keys[3], b"x" * 100)
    assert c.lookup(keys[1]) is None and not c.path(keys[1]).exists()
    assert all(c.lookup(k) is not None for k in (keys[0], keys[2], keys[3]))
    assert (c.total_bytes, c.evictions) == (300, 1)


def test_recency_is_written_to_disk_for_the_next_start(tmp_path: Path) -> None:
    clock = [1_000_000.0]
    c = DiskCache(tmp_path, 1000, clock=lambda: clock[0])
    old, new = key(version="00000001"), key(version="00000002")
    c.put(old, b"x" * 100)
    clock[0] += 10
    c.put(new, b"x" * 100)
    os.utime(c.path(old), (clock[0] - 10, clock[0] - 10))
    os.utime(c.path(new), (clock[0], clock[0]))
    clock[0] += cache_mod.TOUCH_INTERVAL + 1
    c.lookup(old)  # read long after it was written: its mtime moves forward

    # A smaller limit at the next start keeps the recently read file, not the newer one.
    restarted = DiskCache(tmp_path, 150)
    restarted.load()
    assert restarted.lookup(old) is not None
    assert restarted.lookup(new) is None


def test_vanished_file_is_a_miss(tmp_path: Path) -> None:
    c = DiskCache(tmp_path, 1000)
    c.put(key(), b"data")
    c.path(key()).unlink()
    c.forget(key())
    assert c.lookup(key()) is None
    assert c.total_bytes == 0


def test_an_eviction_that_cannot_delete_is_logged_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    c = DiskCache(tmp_path, 150)
    c.load()
    c.put(key(version="00000001"), b"x" * 100)
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.suffix == ".bmp":
            raise PermissionError(13, "Permission denied")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    c.put(key(version="00000002"), b"x" * 100)  # evicts the first, whose file will not go
    assert c.lookup(key(version="00000002")) is not None
    assert "cannot evict" in caplog.text

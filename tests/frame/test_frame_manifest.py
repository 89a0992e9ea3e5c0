"""The frame's manifest reader: summary checks, page CRC and lines, and the diff with the card."""

from __future__ import annotations

import binascii
import contextlib
import json
import random
import tracemalloc
import uuid

import pytest

from common import manifest as bridge_manifest
from titano_app.frame import manifest
from titano_app.frame.manifest import ADD, EMPTY, REMOVE, REPLACE, ManifestError
from titano_app.frame.names import id_order
from titano_app.frame.summary import parse_summary, rev_of

URL = "http://192.168.1.10:8080/v1/frames/kitchen/pictures/"


def ids(rng: random.Random, n: int) -> list[str]:
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def version(rng: random.Random) -> str:
    return f"{rng.getrandbits(32):08x}"


def page_of(entries: dict[str, str]) -> bytes:
    return "".join(f"{pid} {entries[pid]}\n" for pid in sorted(entries)).encode()


def summary_doc(**changes: object) -> dict[str, object]:
    shards = {"0": "1a2b3c4d", "7": "c0ffee00"}
    doc: dict[str, object] = {
        "v": 1,
        "rev": rev_of(shards),
        "count": 12,
        "width": 1,
        "shards": shards,
        "url": URL,
        "format": "bmp8",
        "generated": 1763884800,
    }
    doc.update(changes)
    return doc


def reference_diff(page: dict[str, str], held: list[tuple[str, str]]) -> set[tuple[str, str, str]]:
    ops = set()
    for pid, ver in held:
        if pid not in page:
            ops.add((REMOVE, pid, ver))
        elif page[pid] != ver:
            ops.add((REPLACE, pid, ver))
    for pid, ver in page.items():
        if (pid, ver) not in held:
            ops.add((ADD, pid, ver))
    return ops


# -- summary


def test_summary_from_the_bridge_parses_and_its_pages_check() -> None:
    rng = random.Random(1)
    pictures = {pid: version(rng) for pid in ids(rng, 700)}
    pair = ids(rng, 2)
    pictures["+".join(pair)] = version(rng)
    built = bridge_manifest.build(pictures, None, URL, "bmp16", 1763884800)

    summary = parse_summary(built.summary)

    assert (summary.width, summary.count, summary.rev) == (built.width, 701, built.rev)
    assert summary.picture_bytes == 307266
    total = 0
    for shard in summary.shard_names():
        digest = summary.digest(shard)
        page = built.pages.get(shard, b"")
        assert manifest.page_ok(page, digest)
        total += manifest.check_page(page, shard) if page else 0
    assert total == 701
    assert summary.picture_url(pair[0]) == URL + pair[0] + ".bmp"


def test_small_library_has_one_page_named_all() -> None:
    rng = random.Random(2)
    built = bridge_manifest.build({p: version(rng) for p in ids(rng, 5)}, None, URL, "bmp8", 1)
    summary = parse_summary(built.summary)
    assert list(summary.shard_names()) == ["all"]
    assert manifest.check_page(built.pages["all"], "all") == 5


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"v": 2}, "summary v"),
        ({"v": True}, "summary v"),
        ({"rev": "XYZ"}, "summary rev"),
        ({"count": -1}, "summary count"),
        ({"count": True}, "summary count"),
        ({"width": 3}, "summary width"),
        ({"shards": []}, "summary shards"),
        ({"shards": {"00": "1a2b3c4d"}}, "summary shards"),
        ({"shards": {"0": "1A2B3C4D"}}, "summary shards"),
        ({"url": "ftp://x/"}, "summary url"),
        ({"url": URL.rstrip("/")}, "summary url"),
        ({"format": "bmp24"}, "summary format"),
        ({"generated": "yesterday"}, "summary generated"),
        ({"rev": "00000000"}, "does not match its shards"),
    ],
)
def test_bad_summary_names_the_key(change: dict[str, object], key: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_summary(json.dumps(summary_doc(**change)).encode())
    assert caught.value.code == "bad_manifest"
    assert key in caught.value.detail


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"\xff\xfe", b"[1, 2]", b"{" + b" " * 9000 + b"}", b'{"v": 1}'],
)
def test_unusable_summary_is_an_error_not_a_crash(payload: bytes) -> None:
    with pytest.raises(ManifestError):
        parse_summary(payload)


def test_summary_tolerates_extra_keys_and_text_payloads() -> None:
    doc = summary_doc(extra="later versions may add keys")
    summary = parse_summary(json.dumps(doc))
    assert summary.digest("7") == "c0ffee00"
    assert summary.digest("8") == EMPTY
    assert len(list(summary.shard_names())) == 16


# -- pages


def test_page_ok_is_the_contract_crc() -> None:
    page = b"0" * 100
    digest = "%08x" % (binascii.crc32(page) & 0xFFFFFFFF)
    assert manifest.crc_hex(page) == digest == bridge_manifest.crc_hex(page)
    assert manifest.page_ok(page, digest)
    assert not manifest.page_ok(page + b"\n", digest)
    assert manifest.page_ok(b"", EMPTY)
    assert not manifest.page_ok(b"x", EMPTY)


def test_lines_reads_singles_and_pairs_in_order() -> None:
    rng = random.Random(3)
    a, b, c = sorted(ids(rng, 3))
    entries = {a: "00000001", a + "+" + c: "00000002", b: "0000000f"}
    page = page_of(entries)
    assert list(manifest.lines(page)) == sorted(entries.items())
    assert list(manifest.lines(bytearray(page))) == sorted(entries.items())
    assert list(manifest.lines(memoryview(page))) == sorted(entries.items())


GOOD = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"


@pytest.mark.parametrize(
    ("page", "why"),
    [
        (f"{GOOD} 0000000a".encode(), "line 1"),  # no final newline
        (f"{GOOD} 0000000a\r\n".encode(), "line 1"),
        (f"{GOOD.upper()} 0000000a\n".encode(), "bad picture id"),
        (f"{GOOD.replace('-', 'x')} 0000000a\n".encode(), "bad picture id"),
        (f"{GOOD}+{GOOD[:-1]}g 0000000a\n".encode(), "bad picture id"),
        (f"{GOOD} 0000000A\n".encode(), "bad version"),
        (f"{GOOD} 0000000a\n{GOOD} 0000000b\n".encode(), "line 2"),
        (f"{GOOD[:-1]}4 00000000\n{GOOD} 00000000\n".encode(), "out of order"),
        (b"\n", "line 1"),
    ],
)
def test_bad_page_line_is_reported_with_its_number(page: bytes, why: str) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest.check_page(page, "all")
    assert why in caught.value.detail


def test_check_page_rejects_a_picture_of_another_shard_and_oversized_pages() -> None:
    page = f"{GOOD} 00000000\n".encode()
    assert manifest.check_page(page, "1") == 1
    assert manifest.check_page(page, "01") == 1
    with pytest.raises(ManifestError, match="another shard"):
        manifest.check_page(page, "2")
    with pytest.raises(ManifestError, match="8192"):
        manifest.check_page(page * 200, "01")


def test_valid_id() -> None:
    assert manifest.valid_id(GOOD)
    assert manifest.valid_id(GOOD + "+" + GOOD)
    assert not manifest.valid_id(GOOD.upper())
    assert not manifest.valid_id(GOOD + "+")
    assert not manifest.valid_id("../" + GOOD[3:])
    assert not manifest.valid_id("")


def test_shards_map_to_card_folders() -> None:
    assert list(manifest.shard_names(0)) == ["all"]
    assert list(manifest.shard_names(1))[10] == "a"
    assert len(list(manifest.shard_names(2))) == 256
    assert list(manifest.shard_dirs("3f")) == ["3f"]
    assert list(manifest.shard_dirs("f"))[:3] == ["0f", "1f", "2f"]
    assert len(set(manifest.shard_dirs("all"))) == 256
    assert manifest.tail_of(GOOD + "+" + "a" * 36) == "01"


# -- diff


def test_diff_on_random_sets_matches_set_arithmetic() -> None:
    rng = random.Random(4)
    for _ in range(60):
        pool = ids(rng, rng.randint(0, 60))
        page = {p: version(rng) for p in pool if rng.random() < 0.7}
        held = []
        for pid in pool:
            if pid in page and rng.random() < 0.6:
                held.append((pid, page[pid] if rng.random() < 0.8 else version(rng)))
            elif pid not in page and rng.random() < 0.5:
                held.append((pid, version(rng)))
        held.sort()
        ops = list(manifest.diff_page(page_of(page), held))
        assert set(ops) == reference_diff(page, held)
        assert len(ops) == len(set(ops))


def test_new_version_downloads_before_the_old_goes() -> None:
    page = {GOOD: "00000002"}
    ops = list(manifest.diff_page(page_of(page), [(GOOD, "00000001")]))
    assert ops == [(ADD, GOOD, "00000002"), (REPLACE, GOOD, "00000001")]


def test_card_holding_two_versions_keeps_the_listed_one() -> None:
    held = [(GOOD, "00000001"), (GOOD, "00000002"), (GOOD, "00000003")]
    ops = list(manifest.diff_page(page_of({GOOD: "00000002"}), held))
    assert ops == [(REPLACE, GOOD, "00000001"), (REPLACE, GOOD, "00000003")]


def test_empty_page_removes_everything_the_folder_holds() -> None:
    held = [(GOOD, "00000001")]
    assert list(manifest.diff_page(b"", held)) == [(REMOVE, GOOD, "00000001")]
    assert list(manifest.diff_page(b"", [])) == []


def test_diff_folder_by_folder_covers_the_whole_page() -> None:
    rng = random.Random(5)
    page = {p: version(rng) for p in ids(rng, 150)}
    held = sorted((p, v) for p, v in list(page.items())[:100])
    held += sorted((p, version(rng)) for p in ids(rng, 20))
    whole = reference_diff(page, sorted(held))
    by_folder: set[tuple[str, str, str]] = set()
    payload = page_of(page)
    for tail in manifest.shard_dirs("all"):
        mine = sorted(h for h in held if h[0][34:36] == tail)
        by_folder.update(manifest.diff_page(payload, mine, tail))
    assert by_folder == whole


def full_page(rng: random.Random, limit: int) -> tuple[bytes, list[tuple[str, str]]]:
    entries: dict[str, str] = {}
    while len(page_of(entries)) + 46 <= limit:
        entries[ids(rng, 1)[0]] = version(rng)
    held = sorted(list(entries.items())[::2] + [(p, version(rng)) for p in ids(rng, 30)])
    return page_of(entries), held


def peak_of_diff(payload: bytes, held: list[tuple[str, str]]) -> tuple[int, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        ops = 0
        for _op in manifest.diff_page(payload, held):
            ops += 1
        return tracemalloc.get_traced_memory()[1] - base, ops
    finally:
        tracemalloc.stop()


@pytest.mark.usefixtures("gc_paused")  # a collection inside would count others' leftovers
def test_diffing_a_full_page_uses_constant_memory() -> None:
    rng = random.Random(6)
    small, small_held = full_page(rng, 1024)
    big, big_held = full_page(rng, 8192)
    assert len(big) > 8000

    small_peak, _ = peak_of_diff(small, small_held)
    big_peak, ops = peak_of_diff(big, big_held)

    assert ops > 100  # adds, removes and keeps were all walked
    assert big_peak < 4096  # a list of the page's lines alone takes ~15 KB
    assert big_peak < small_peak + 1024


def test_card_listing_is_put_in_id_order_in_place() -> None:
    """The store sorts a folder's file names without a key list; pairs `a+b` come after `a`."""
    rng = random.Random(7)
    for _ in range(200):
        names = []
        for pid in ids(rng, rng.randint(0, 6)):
            names += [f"{pid}.{version(rng)}.bmp" for _ in range(rng.randint(0, 2))]
            names += [
                f"{pid}+{ids(rng, 1)[0]}.{version(rng)}.bmp" for _ in range(rng.randint(0, 2))
            ]
        rng.shuffle(names)
        got = list(names)
        id_order(got)
        assert got == sorted(names, key=lambda n: (n[:-13], n))


def test_summary_shards_are_read_in_place_and_damage_is_only_ever_bad_manifest() -> None:
    rng = random.Random(8)
    pictures = {pid: version(rng) for pid in ids(rng, 3000)}  # width 2: 256 shards
    built = bridge_manifest.build(pictures, None, URL, "bmp8", 1763884800)
    summary = parse_summary(built.summary)
    assert len(summary.digests) == 256 * 8  # 2 KB, not a dict of 256 strings
    assert all(summary.digest(s) == d for s, d in built.digests.items())
    for _ in range(3000):
        damaged = bytearray(built.summary)
        damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        with contextlib.suppress(ManifestError):
            parse_summary(bytes(damaged))

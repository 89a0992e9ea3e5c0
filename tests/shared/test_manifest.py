"""Manifest wire format, sharding, publishing plans, and the topics they go to."""

from __future__ import annotations

import binascii
import json
import random
import uuid
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common import manifest, topics
from common.config import ImageProfile
from common.manifest import Retained, build, diff, parse_page, parse_summary
from tests.kit.broker import Mosquitto
from tests.kit.mqttc import Collector

URL = "http://192.168.1.10:8080/v1/frames/kitchen/pictures/"


def ids(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def pictures(n: int, seed: int = 1) -> dict[str, str]:
    return {pid: manifest.version(pid, None, "p") for pid in ids(n, seed)}


def retained_of(m: manifest.Manifest) -> Retained:
    return Retained(m.summary, dict(m.pages))


# --- versions --------------------------------------------------------------------------------


def test_version_is_8_hex_and_pinned() -> None:
    # Pinned: a change here would make every frame download its whole library again.
    assert manifest.version("abc", "th", '["bmp16","contain",null]') == "c829561b"


def test_version_changes_with_each_field_and_nothing_else() -> None:
    v = manifest.version("sum", "hash", "profile")
    assert manifest.version("sum", "hash", "profile") == v
    others = {
        manifest.version("sum2", "hash", "profile"),
        manifest.version("sum", "hash2", "profile"),
        manifest.version("sum", None, "profile"),
        manifest.version("sum", "hash", "profile2"),
        manifest.version("sumhash", "", "profile"),  # fields cannot bleed into each other
    }
    assert v not in others and len(others) == 5


def test_profile_key_follows_what_changes_the_bytes() -> None:
    base = ImageProfile(format="bmp8", fit="blur", caption="{city}")
    key = manifest.profile_key(base)
    assert manifest.profile_key(replace(base, pair_portraits=True)) == key
    for changed in (
        replace(base, format="bmp16"),
        replace(base, fit="cover"),
        replace(base, caption=None),
    ):
        assert manifest.profile_key(changed) != key


def test_pair_version_depends_on_both_and_order() -> None:
    assert manifest.pair_version("aaaaaaaa", "bbbbbbbb") != manifest.pair_version(
        "bbbbbbbb", "aaaaaaaa"
    )
    assert manifest.VERSION_RE.match(manifest.pair_version("aaaaaaaa", "bbbbbbbb"))


# --- pages and summary -----------------------------------------------------------------------


def test_shard_of_uses_the_tail_of_the_first_asset() -> None:
    a, b = "0f8e2a4c-1111-4222-8333-44445555abcd", "0f8e2a4c-1111-4222-8333-444455550000"
    assert manifest.shard_of(a, 0) == "all"
    assert manifest.shard_of(a, 1) == "d"
    assert manifest.shard_of(a, 2) == "cd"
    assert manifest.shard_of(f"{a}+{b}", 2) == "cd"


def test_page_bytes_exact_format() -> None:
    entries = {
        "b" * 8 + "-0000-4000-8000-" + "0" * 12: "00000002",
        "a" * 8 + "-0000-4000-8000-" + "0" * 12: "00000001",
    }
    page = manifest.page_bytes(entries)
    lines = page.decode().split("\n")
    assert lines[-1] == "" and lines[0].startswith("aaaaaaaa") and lines[0].endswith(" 00000001")
    assert page.count(b"\n") == 2 and b"\r" not in page


def test_small_library_is_one_page_all() -> None:
    pics = pictures(178)
    m = build(pics, None, URL, "bmp8", 1763884800)
    assert m.width == 0 and list(m.pages) == ["all"] and len(m.pages["all"]) <= manifest.PAGE_LIMIT
    assert m.count == 178 and m.dropped == 0
    assert m.digests["all"] == format(binascii.crc32(m.pages["all"]), "08x")


def test_width_grows_only_when_a_page_would_overflow() -> None:
    assert manifest.choose_width(pictures(178)) == 0
    assert manifest.choose_width(pictures(179)) == 1
    assert manifest.choose_width(pictures(5000)) == 2
    assert manifest.choose_width({}) == 0


def test_summary_json_matches_the_protocol() -> None:
    m = build(pictures(1000), None, URL, "bmp8", 1763884800)
    doc = json.loads(m.summary)
    assert list(doc) == ["v", "rev", "count", "width", "shards", "url", "format", "generated"]
    assert doc["v"] == 1 and doc["count"] == 1000 and doc["width"] == 1 and doc["url"] == URL
    assert doc["format"] == "bmp8" and doc["generated"] == 1763884800
    assert doc["shards"] == {s: format(binascii.crc32(p), "08x") for s, p in m.pages.items()}
    lines = "".join(f"{s}:{d}\n" for s, d in sorted(doc["shards"].items()))
    assert doc["rev"] == format(binascii.crc32(lines.encode()), "08x")
    assert b" " not in m.summary


def test_width_2_holds_34000_and_summary_fits() -> None:
    # Shards fill at random, so the fullest of 256 pages decides: 34,000 fit with no drop.
    long_url = "https://frames.example.org/" + "x" * 200 + "/v1/frames/kitchen/pictures/"
    m = build(pictures(34000), None, long_url, "bmp16", 1)
    assert m.width == 2 and len(m.pages) == 256 and m.dropped == 0
    assert max(len(p) for p in m.pages.values()) <= manifest.PAGE_LIMIT
    assert len(m.summary) <= manifest.SUMMARY_LIMIT


def test_beyond_capacity_keeps_the_most_recently_taken() -> None:
    pics = pictures(60000, seed=2)
    taken = {pid: float(i) for i, pid in enumerate(pics)}  # later in the dict = newer
    m = build(pics, taken, URL, "bmp8", 1)
    kept = {pid for page in m.pages.values() for pid in parse_page(page) or {}}
    assert m.dropped == 60000 - len(kept) > 0 and m.count == len(kept)
    assert max(len(p) for p in m.pages.values()) <= manifest.PAGE_LIMIT
    by_shard: dict[str, list[str]] = {}
    for pid in pics:
        by_shard.setdefault(manifest.shard_of(pid, 2), []).append(pid)
    for in_shard in by_shard.values():
        newest_dropped = max((taken[p] for p in in_shard if p not in kept), default=-1.0)
        assert all(taken[p] > newest_dropped for p in in_shard if p in kept)


def test_absurd_url_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="summary"):
        build(pictures(3), None, "http://x/" + "a" * 9000, "bmp8", 1)


def test_empty_manifest() -> None:
    m = build({}, None, URL, "bmp8", 1)
    assert m.pages == {} and m.count == 0 and m.rev == "00000000"
    assert parse_summary(m.summary) is not None


@settings(max_examples=30, deadline=None)
@given(st.dictionaries(st.uuids().map(str), st.from_regex(r"\A[0-9a-f]{8}\Z"), max_size=600))
def test_pages_round_trip_and_never_overflow(pics: dict[str, str]) -> None:
    m = build(pics, None, URL, "bmp16", 1)
    merged: dict[str, str] = {}
    for shard, page in m.pages.items():
        assert 0 < len(page) <= manifest.PAGE_LIMIT
        parsed = parse_page(page)
        assert parsed is not None and all(manifest.shard_of(p, m.width) == shard for p in parsed)
        merged |= parsed
    assert merged == pics


# --- reading retained state back ---------------------------------------------------------------


def test_parse_summary_round_trip() -> None:
    m = build(pictures(300), None, URL, "bmp8", 7)
    s = parse_summary(m.summary)
    assert s is not None and (s.rev, s.count, s.width, s.url, s.format, s.generated) == (
        m.rev,
        300,
        1,
        URL,
        "bmp8",
        7,
    )
    assert dict(s.shards) == dict(m.digests)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b"null",
        b"{",
        b'{"v": 2}',
        b'{"v":1,"rev":"XYZ","count":1,"width":0,"shards":{},"url":"u","format":"f","generated":1}',
        b'{"v":1,"rev":"00000000","count":true,"width":0,"shards":{},"url":"u","format":"f","generated":1}',
        b'{"v":1,"rev":"00000000","count":1,"width":3,"shards":{},"url":"u","format":"f","generated":1}',
        b'{"v":1,"rev":"00000000","count":1,"width":0,"shards":{"all":"nothex!"},"url":"u","format":"f","generated":1}',
        b'{"v":1,"rev":"00000000","count":1,"width":0,"shards":{"x/y":"00000000"},"url":"u","format":"f","generated":1}',
        b'{"v":1,"rev":"00000000","count":1,"width":0,"shards":{},"url":null,"format":"f","generated":1}',
        b"[" * 5000,  # too deep for Python's json: RecursionError, not ValueError
    ],
)
@pytest.mark.usefixtures("gc_paused")
def test_parse_summary_rejects_malformed(payload: bytes) -> None:
    assert parse_summary(payload) is None


UID = "0f8e2a4c-1111-4222-8333-44445555abcd"
OTHER = "7c1d2e3f-aaaa-4bbb-8ccc-ddddeeeeffff"


@pytest.mark.parametrize(
    "payload",
    [
        b"\xff",
        f"{UID} 0000000a".encode(),
        f"{UID} 0000000A\n".encode(),
        f"{UID}  0000000a\n".encode(),
        f"{UID} 0000000a\r\n".encode(),
        b"not-a-uuid 0000000a\n",
        f"{UID} 0000000a\n{UID} 0000000b\n".encode(),
        f"{UID}+ 0000000a\n".encode(),
        b"\n",
    ],
)
def test_parse_page_rejects_malformed(payload: bytes) -> None:
    assert parse_page(payload) is None


def test_parse_page_accepts_pairs_and_empty() -> None:
    assert parse_page(b"") == {}
    assert parse_page(f"{UID}+{OTHER} 0000000a\n".encode()) == {f"{UID}+{OTHER}": "0000000a"}


# --- publishing plans --------------------------------------------------------------------------


def test_fresh_broker_gets_pages_then_summary() -> None:
    m = build(pictures(1000), None, URL, "bmp8", 1)
    plan = diff(Retained(None, {}), m)
    shards = [s.shard for s in plan.steps]
    assert shards == [*sorted(m.pages), None]
    assert plan.pages_published == 16 and plan.summary_published and plan.pages_cleared == 0


def test_nothing_changed_publishes_nothing_even_with_new_generated() -> None:
    pics = pictures(1000)
    old = build(pics, None, URL, "bmp8", 1)
    assert diff(retained_of(old), build(pics, None, URL, "bmp8", 999)).steps == ()


def test_one_changed_favourite_in_30000_is_one_page_and_the_summary() -> None:
    pics = pictures(30000)
    old = build(pics, None, URL, "bmp8", 1)
    changed = dict(pics)
    victim = next(iter(changed))
    changed[victim] = "ffffffff"
    plan = diff(retained_of(old), build(changed, None, URL, "bmp8", 2))
    assert [s.shard for s in plan.steps] == [manifest.shard_of(victim, 2), None]


def test_url_or_format_change_republishes_only_the_summary() -> None:
    pics = pictures(500)
    old = retained_of(build(pics, None, URL, "bmp8", 1))
    assert [s.shard for s in diff(old, build(pics, None, URL + "x/", "bmp8", 1)).steps] == [None]
    assert [s.shard for s in diff(old, build(pics, None, URL, "bmp16", 1)).steps] == [None]


def test_width_change_clears_old_pages_last() -> None:
    small = pictures(100)
    old = retained_of(build(small, None, URL, "bmp8", 1))
    plan = diff(old, build(pictures(400), None, URL, "bmp8", 2))
    kinds = [
        ("clear" if s.shard and not s.payload else "page" if s.shard else "summary")
        for s in plan.steps
    ]
    assert kinds == ["page"] * 16 + ["summary", "clear"] and plan.steps[-1].shard == "all"


def test_lost_page_or_summary_is_healed() -> None:
    m = build(pictures(1000), None, URL, "bmp8", 1)
    pages = dict(m.pages)
    pages.pop("3")
    assert [s.shard for s in diff(Retained(m.summary, pages), m).steps] == ["3"]
    assert [s.shard for s in diff(Retained(b"garbage", dict(m.pages)), m).steps] == [None]


def test_plan_messages_use_the_topics_module() -> None:
    m = build(pictures(200), None, URL, "bmp8", 1)
    msgs = diff(Retained(None, {"all": b"x"}), m).messages("home/tf", "kitchen")
    assert msgs[0][0] == "home/tf/kitchen/manifest/0"
    assert ("home/tf/kitchen/manifest", m.summary) in msgs
    assert msgs[-1] == ("home/tf/kitchen/manifest/all", b"")


def test_restart_against_a_real_broker_publishes_nothing(broker: Mosquitto) -> None:
    base, frame = "titanoframe", "kitchen"
    first = build(pictures(3000), None, URL, "bmp8", 1)
    pub = Collector(broker, "bridge")
    assert pub.wait_connected()
    for topic, payload in diff(Retained(None, {}), first).messages(base, frame):
        pub.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    pub.close()
    # Read back as the renderer does (its ACL allows exactly the manifest topics).
    reader = Collector(broker, "renderer")
    assert reader.wait_connected()
    reader.subscribe(topics.manifest(base, frame))
    reader.subscribe(topics.manifest_page(base, frame, "0").rsplit("/", 1)[0] + "/+")
    expected = len(first.pages) + 1
    assert reader.wait_for(lambda msgs: len(msgs) >= expected)
    reader.close()
    summary, pages = None, {}
    for topic, payload, _ in reader.messages:
        parsed = topics.parse_manifest(base, topic)
        assert parsed is not None and parsed[0] == frame
        if parsed[1] is None:
            summary = payload
        else:
            pages[parsed[1]] = payload
    again = build(pictures(3000), None, URL, "bmp8", 2)
    assert diff(Retained(summary, pages), again).steps == ()


# --- topics ------------------------------------------------------------------------------------


def test_topics_follow_the_protocol() -> None:
    b, f = "titanoframe", "kitchen"
    assert topics.bridge_status(b) == "titanoframe/bridge/status"
    assert topics.manifest(b, f) == "titanoframe/kitchen/manifest"
    assert topics.manifest_page(b, f, "a7") == "titanoframe/kitchen/manifest/a7"
    assert topics.picture(b, f) == "titanoframe/kitchen/picture"
    assert topics.status(b, f) == "titanoframe/kitchen/status"
    assert topics.state(b, f) == "titanoframe/kitchen/state"
    assert topics.event(b, f) == "titanoframe/kitchen/event"
    assert topics.cmd(b, f, "next") == "titanoframe/kitchen/cmd/next"
    assert topics.frames_filter(b, "cmd/+") == "titanoframe/+/cmd/+"
    assert topics.discovery("homeassistant", f) == "homeassistant/device/titanoframe_kitchen/config"
    assert topics.ha_status("homeassistant") == "homeassistant/status"


@pytest.mark.parametrize("frame", ["", "Kitchen", "a/b", "+", "#", "x" * 33])
def test_topic_builders_refuse_bad_frame_ids(frame: str) -> None:
    with pytest.raises(ValueError, match="frame id"):
        topics.state("titanoframe", frame)


def test_topic_builders_refuse_bad_shards_and_commands() -> None:
    with pytest.raises(ValueError, match="shard"):
        topics.manifest_page("titanoframe", "kitchen", "+")
    with pytest.raises(ValueError, match="command"):
        topics.cmd("titanoframe", "kitchen", "reboot")


def test_parse_cmd() -> None:
    assert topics.parse_cmd("home/tf", "home/tf/kitchen/cmd/next") == ("kitchen", "next")
    assert topics.parse_cmd("home/tf", "home/tf/kitchen/cmd/whatever") == ("kitchen", "whatever")
    for topic in (
        "home/tf/kitchen/state",
        "home/tf/kitchen/cmd/",
        "home/tf/kitchen/cmd/a/b",
        "home/tfx/kitchen/cmd/next",
        "home/tf/bridge/cmd/next",
        "home/tf/Bad/cmd/next",
    ):
        assert topics.parse_cmd("home/tf", topic) is None
    assert set(topics.COMMANDS) == {
        "next",
        "previous",
        "pause",
        "display",
        "brightness",
        "auto_brightness",
        "interval",
        "show",
        "sync",
        "like",
        "hide",
        "notice",
    }
    assert topics.guests("home/tf", "kitchen") == "home/tf/kitchen/guests"


def test_parse_manifest_and_discovery() -> None:
    assert topics.parse_manifest("tf", "tf/hall/manifest") == ("hall", None)
    assert topics.parse_manifest("tf", "tf/hall/manifest/0a") == ("hall", "0a")
    assert topics.parse_manifest("tf", "tf/hall/manifest/zz") is None
    assert topics.parse_discovery("ha", "ha/device/titanoframe_hall/config") == "hall"
    assert topics.parse_discovery("ha", "ha/device/zigbee_hall/config") is None
    assert topics.parse_discovery("ha", "ha/device/titanoframe_Hall/config") is None

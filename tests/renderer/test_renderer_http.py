"""The renderer's HTTP API against real servers on loopback: Mosquitto (manifests published as
the bridge publishes them), the fake Immich, and the renderer itself, in-process on a free port
or as `python -m renderer` for the smoke test. The harness lives in `tests/kit/rendererkit.py`.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from PIL import Image

from common import manifest, signing
from common.config import ImageProfile, ImmichConfig
from common.folderids import folder_asset_id
from renderer import pool as pool_mod
from renderer.errors import PictureError
from renderer.roster import Roster
from renderer.upstream import UpstreamSpec
from renderer.work import Task
from tests.kit import ROOT, rendererkit
from tests.kit.broker import USERS, Mosquitto, free_port
from tests.kit.fakes.immich import FakeImmich
from tests.kit.rendererkit import (
    BASE,
    BMP8_SIZE,
    BMP16_SIZE,
    URL_KEY,
    BridgeLink,
    StartRig,
    bearer,
    bmp_ok,
    frame_url,
    rig_config,
    small_assets,
    versions,
    wait_for,
)

fake = rendererkit.fake
start_rig = rendererkit.start_rig


# -- serving ---------------------------------------------------------------------------------


def test_new_pictures_are_prerendered_then_served_from_cache(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 3)
    rig.publish_manifest("kitchen", versions(ids, "1a2b3c4d"), "bmp16")

    # No client has asked yet: the renderer fetched every new picture on its own.
    assert wait_for(lambda: all(rig.thumbs(a) == 1 for a in ids))
    assert wait_for(lambda: rig.metric("prerenders_total") == 3)

    resp = rig.get("kitchen", f"{ids[0]}.bmp")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/bmp"
    assert resp.headers["Content-Length"] == str(BMP16_SIZE)
    assert resp.headers["ETag"] == '"1a2b3c4d"'
    bmp_ok(resp.content, BMP16_SIZE, 16)

    again = rig.get("kitchen", f"{ids[0]}.bmp")
    assert again.content == resp.content
    # Served twice, fetched from Immich once: cache hits never go upstream.
    assert rig.thumbs(ids[0]) == 1
    assert rig.metric("cache_hits_total") == 2
    assert rig.metric("cache_misses_total") == 0
    assert rig.metric('requests_total{route="picture",status="200"}') == 2


def test_bmp8_profile_and_jpeg_rendering(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 1, city="Lyon")
    rig.publish_manifest("hall", versions(ids), "bmp8")

    resp = rig.get("hall", f"{ids[0]}.bmp")
    assert resp.status_code == 200
    assert resp.headers["Content-Length"] == str(BMP8_SIZE)
    bmp_ok(resp.content, BMP8_SIZE, 8)

    jpg = rig.get("hall", f"{ids[0]}.jpg")
    assert jpg.status_code == 200
    assert jpg.headers["Content-Type"] == "image/jpeg"
    assert int(jpg.headers["Content-Length"]) == len(jpg.content)
    with Image.open(io.BytesIO(jpg.content)) as img:
        assert (img.format, img.size) == ("JPEG", (480, 320))


def test_format_announced_in_the_summary_wins(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 1)
    # kitchen's config says bmp16; the bridge (another config revision) announced bmp8.
    rig.publish_manifest("kitchen", versions(ids), "bmp8")
    resp = rig.get("kitchen", f"{ids[0]}.bmp")
    assert resp.headers["Content-Length"] == str(BMP8_SIZE)
    bmp_ok(resp.content, BMP8_SIZE, 8)


def test_etag_and_304(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 1)
    rig.publish_manifest("kitchen", versions(ids, "0badcafe"), "bmp16")
    name = f"{ids[0]}.bmp"

    for header in ('"0badcafe"', 'W/"0badcafe"', '"x", "0badcafe"', "*"):
        resp = rig.get("kitchen", name, headers={"If-None-Match": header})
        assert resp.status_code == 304, header
        assert resp.content == b""
        assert resp.headers["ETag"] == '"0badcafe"'
    assert rig.get("kitchen", name, headers={"If-None-Match": '"0badcafd"'}).status_code == 200

    # A new version in the manifest is a new ETag: the old one no longer matches.
    rig.publish_manifest("kitchen", versions(ids, "0badcaff"), "bmp16")
    resp = rig.get("kitchen", name, headers={"If-None-Match": '"0badcafe"'})
    assert resp.status_code == 200
    assert resp.headers["ETag"] == '"0badcaff"'


def test_cache_headers_say_what_caches_may_do(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 1)
    rig.publish_manifest("kitchen", versions(ids, "0badcafe"), "bmp16")
    rig.publish_manifest("open", versions(ids, "0badcafe"), "bmp16")
    name = f"{ids[0]}.bmp"

    # The plain URL names the picture, not its version: keep it, but ask again (ETag → 304).
    plain = rig.get("kitchen", name)
    assert plain.headers["Cache-Control"] == "private, no-cache"
    assert rig.get("open", name).headers["Cache-Control"] == "public, no-cache"
    revalidated = rig.get("kitchen", name, headers={"If-None-Match": '"0badcafe"'})
    assert (revalidated.status_code, revalidated.content) == (304, b"")
    assert revalidated.headers["Cache-Control"] == "private, no-cache"

    # `?v=<current version>` names bytes that never change: a year, without asking again.
    pinned = rig.get("kitchen", name, params={"v": "0badcafe"})
    assert pinned.status_code == 200
    assert pinned.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert pinned.content == plain.content
    shared = rig.get("open", name, params={"v": "0badcafe"})
    assert shared.headers["Cache-Control"] == "public, max-age=31536000, immutable"

    # Any other version is not served under its name, and the refusal is not to be kept.
    stale = rig.get("kitchen", name, params={"v": "0badcafd"})
    assert stale.status_code == 404
    assert stale.json()["error"] == "not_in_manifest"
    assert stale.headers["Cache-Control"] == "no-store"
    assert rig.thumbs(ids[0]) == 2  # one render for each frame's profile, none for the refusal


def test_a_slow_reader_gets_every_cached_picture_whole(start_rig: StartRig) -> None:
    """Requests pipelined faster than the client reads: the kernel's socket buffer fills, so
    answers go out partly by the first `sendfile` and partly by the event loop, or wait behind
    the previous one. Every body arrives whole, in order, on the one keep-alive connection."""
    rig = start_rig()
    ids = small_assets(rig.fake, 1)
    rig.publish_manifest("kitchen", versions(ids), "bmp16")
    assert wait_for(lambda: rig.metric("prerenders_total") == 1)
    whole = rig.get("kitchen", f"{ids[0]}.bmp").content
    head = (
        f"GET /v1/frames/kitchen/pictures/{ids[0]}.bmp HTTP/1.1\r\nHost: t\r\n"
        f"Authorization: Bearer {USERS['kitchen']}\r\n\r\n"
    ).encode()
    pipelined = 24  # 7 MB of answers: more than the kernel buffers on a loopback connection
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    with sock:
        sock.connect(("127.0.0.1", rig.port))
        sock.sendall(head * pipelined)
        data = b""
        for _ in range(pipelined):
            while b"\r\n\r\n" not in data:
                data += sock.recv(4096)
            status, _, data = data.partition(b"\r\n\r\n")
            assert status.startswith(b"HTTP/1.1 200")
            while len(data) < len(whole):
                chunk = sock.recv(65536)
                assert chunk, "connection closed mid-body"
                data += chunk
            body, data = data[: len(whole)], data[len(whole) :]
            assert body == whole
    assert data == b""
    assert rig.metric("cache_hits_total") == pipelined + 1
    assert rig.thumbs(ids[0]) == 1


def test_only_pictures_of_the_current_manifest(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 3)
    rig.publish_manifest("kitchen", versions(ids[:2]), "bmp16")
    assert rig.get("kitchen", f"{ids[0]}.bmp").status_code == 200

    # In Immich but not in this frame's manifest, or in another frame's only.
    for frame, pid in (("kitchen", ids[2]), ("hall", ids[0])):
        resp = rig.get(frame, f"{pid}.bmp")
        assert resp.status_code == 404
        assert resp.json()["error"] == "not_in_manifest"

    rig.publish_manifest("kitchen", versions(ids[1:]), "bmp16")  # ids[0] removed
    assert rig.get("kitchen", f"{ids[0]}.bmp").json()["error"] == "not_in_manifest"
    assert rig.get("kitchen", f"{ids[2]}.bmp").status_code == 200

    bad = {
        "unknown_frame": rig.get("attic", f"{ids[1]}.bmp"),
        "bad_picture_id": rig.get("kitchen", f"{ids[1].upper()}.bmp"),
        "bad_picture_id ": rig.get("kitchen", f"{ids[1]}.png"),
        "not_found": requests.get(f"http://127.0.0.1:{rig.port}/v2/nothing", timeout=10),
    }
    for code, resp in bad.items():
        assert resp.status_code in (400, 404), code
        assert resp.json()["error"] == code.strip()
        assert resp.json()["detail"]


def test_frame_secret(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 1)
    rig.publish_manifest("kitchen", versions(ids), "bmp16")
    rig.publish_manifest("open", versions(ids), "bmp16")
    url = rig.url("kitchen", f"{ids[0]}.bmp")

    cases = {
        "none": {},
        "wrong": {"Authorization": "Bearer not-the-secret"},
        "other frame's": bearer("hall"),
        "basic scheme": {"Authorization": f"Basic {USERS['kitchen']}"},
    }
    for what, headers in cases.items():
        resp = requests.get(url, headers=headers, timeout=10)
        assert resp.status_code == 401, what
        assert resp.json()["error"] == "unauthorized"
        assert USERS["kitchen"] not in resp.text
    assert requests.get(url, params={"token": "nope"}, timeout=10).status_code == 401

    assert requests.get(url, headers=bearer("kitchen"), timeout=30).status_code == 200
    assert requests.get(url, params={"token": USERS["kitchen"]}, timeout=30).status_code == 200
    # A frame without a secret is open.
    assert requests.get(rig.url("open", f"{ids[0]}.bmp"), timeout=30).status_code == 200


def test_signed_jpeg_urls(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 2)
    rig.publish_manifest("kitchen", versions(ids), "bmp16")
    now = int(time.time())
    base = f"http://127.0.0.1:{rig.port}"

    good = signing.signed_jpeg_url(base, URL_KEY, "kitchen", ids[0], now + 300)
    resp = requests.get(good, timeout=30)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "image/jpeg"

    expired = signing.signed_jpeg_url(base, URL_KEY, "kitchen", ids[0], now - 1)
    wrong_key = signing.signed_jpeg_url(base, "another-key", "kitchen", ids[0], now + 300)
    other_picture = good.replace(ids[0], ids[1])
    as_bmp = good.replace(".jpg?", ".bmp?")
    reasons = {
        expired: "signed URL expired",
        wrong_key: "bad signature",
        other_picture: "bad signature",
        as_bmp: "missing frame secret",
    }
    for url, reason in reasons.items():
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 401
        assert resp.json()["detail"] == reason


# -- failures upstream -----------------------------------------------------------------------


def test_immich_failures_are_502_and_the_service_stays_up(start_rig: StartRig) -> None:
    rig = start_rig(upstream_timeout=1)
    ids = small_assets(rig.fake, 3)
    rig.fake.fail_next(10_000, 500, path="/assets")
    rig.publish_manifest("kitchen", versions(ids), "bmp16")

    resp = rig.get("kitchen", f"{ids[0]}.bmp")
    assert resp.status_code == 502
    assert resp.json()["error"] == "immich_error"
    assert "500" in resp.json()["detail"]
    assert rig.fake.api_key not in resp.text
    # Every pre-render has failed too (none is still under way to be joined below).
    assert wait_for(lambda: rig.metric('upstream_errors_total{kind="immich_error"}') >= 3)

    rig.fake.clear_faults()
    rig.fake.delay(3.0, path="/assets")
    resp = rig.get("kitchen", f"{ids[1]}.bmp")
    assert resp.status_code == 502
    assert resp.json()["error"] == "upstream_timeout"

    rig.fake.clear_faults()
    health = requests.get(f"http://127.0.0.1:{rig.port}/healthz", timeout=10).json()
    assert health["renderer"] == "ok"
    assert rig.get("kitchen", f"{ids[2]}.bmp").status_code == 200
    assert rig.get("kitchen", f"{ids[0]}.bmp").status_code == 200

    assert rig.metric('upstream_errors_total{kind="immich_error"}') >= 1
    assert rig.metric('upstream_errors_total{kind="timeout"}') >= 1


def test_broken_bodies_and_a_crashed_worker_are_502_and_the_pool_recovers(
    start_rig: StartRig,
) -> None:
    rig = start_rig(upstream_timeout=10)
    ids = small_assets(rig.fake, 3)
    rig.fake.truncate_next(10_000, path=f"/assets/{ids[0]}/thumbnail")
    rig.fake.delay(5.0, path=f"/assets/{ids[1]}/thumbnail")
    rig.publish_manifest("kitchen", versions(ids), "bmp16")

    # Immich hangs up halfway through the preview: the worker says so.
    resp = rig.get("kitchen", f"{ids[0]}.bmp")
    assert resp.status_code == 502
    assert resp.json()["error"] in ("immich_error", "immich_unreachable")
    assert resp.json()["detail"]

    # A worker dies (the kernel's OOM killer, say) while the picture is being made.
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(rig.get, "kitchen", f"{ids[1]}.bmp")
        assert wait_for(lambda: rig.thumbs(ids[1]) >= 1 and rig.metric("cache_misses_total") >= 2)
        workers = rig.service.pipeline.pool.pids()
        assert len(workers) == 2
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        resp = pending.result()
    assert resp.status_code == 502
    assert resp.json()["error"] == "render_crashed"

    rig.fake.clear_faults()
    for picture in (ids[1], ids[2], ids[0]):
        assert rig.get("kitchen", f"{picture}.bmp").status_code == 200
    assert not set(workers) & set(rig.service.pipeline.pool.pids())
    assert rig.metric("render_errors_total") >= 1
    assert rig.get("kitchen", f"{ids[1]}.jpg").status_code == 200


def test_stopping_fails_a_job_that_outlasts_the_grace(
    fake: FakeImmich, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Immich hangs on a preview while the renderer stops: the job held by the worker gets an
    # answer (rather than a request left waiting on a worker that is gone), and the worker ends.
    monkeypatch.setattr(pool_mod, "STOP_GRACE", 0.5)
    (asset,) = small_assets(fake, 1)
    fake.delay(30.0, path=f"/assets/{asset}/thumbnail")
    spec = UpstreamSpec(ImmichConfig(fake.url, fake.api_key), 30.0, 8 << 20)
    task = Task((asset,), (), ImageProfile(), "bmp", str(tmp_path / "picture.bmp"))

    async def stop_while_busy() -> int:
        pool = pool_mod.RenderPool(1, spec)
        await pool.start()
        (pid,) = pool.pids()
        pending = asyncio.ensure_future(pool.produce(task))
        while fake.count(f"/assets/{asset}/thumbnail") == 0:
            await asyncio.sleep(0.02)
        await pool.close()
        with pytest.raises(PictureError) as failed:
            await asyncio.wait_for(pending, 5)
        assert failed.value.code == "shutting_down"
        return pid

    pid = asyncio.run(stop_while_busy())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_immich_unreachable(start_rig: StartRig) -> None:
    rig = start_rig(immich_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    ids = small_assets(rig.fake, 1)
    rig.publish_manifest("kitchen", versions(ids), "bmp16")
    resp = rig.get("kitchen", f"{ids[0]}.bmp")
    assert resp.status_code == 502
    assert resp.json()["error"] == "immich_unreachable"
    health = requests.get(f"http://127.0.0.1:{rig.port}/healthz", timeout=10).json()
    assert (health["renderer"], health["immich"]) == ("ok", "unreachable")


def test_healthz(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 2)
    rig.publish_manifest("kitchen", versions(ids), "bmp16")
    health = requests.get(f"http://127.0.0.1:{rig.port}/healthz", timeout=10).json()
    assert health["renderer"] == "ok"
    assert health["broker"] == "connected"
    assert health["immich"] == "reachable"
    assert health["frames"] == {"kitchen": 2, "hall": 0, "open": 0}
    pings = rig.fake.count("/server/ping")
    requests.get(f"http://127.0.0.1:{rig.port}/healthz", timeout=10)
    assert rig.fake.count("/server/ping") == pings  # cached for a few seconds


def test_healthz_pings_immich_once_however_many_checks_wait_or_hang_up(
    start_rig: StartRig,
) -> None:
    rig = start_rig()
    service = rig.service
    loop = service._loop
    assert loop is not None
    url = f"http://127.0.0.1:{rig.port}/healthz"
    rig.fake.delay(2.0, path="/server/ping")  # keeps the first ping in flight throughout

    async def hang_up() -> None:
        # What aiohttp does to a handler whose client disconnects: cancel it mid-wait.
        check = asyncio.ensure_future(service.health())
        while rig.fake.count("/server/ping") == 0:
            await asyncio.sleep(0.01)
        check.cancel()
        await asyncio.wait([check])

    with ThreadPoolExecutor(4) as pool:
        early = [pool.submit(requests.get, url, timeout=10) for _ in range(2)]
        asyncio.run_coroutine_threadsafe(hang_up(), loop).result(10)
        late = [pool.submit(requests.get, url, timeout=10) for _ in range(2)]
        answers = [f.result().json()["immich"] for f in early + late]
    assert answers == ["reachable"] * 4
    assert rig.fake.count("/server/ping") == 1


# -- cache -----------------------------------------------------------------------------------


def test_cache_survives_restart(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 2)
    rig.publish_manifest("kitchen", versions(ids), "bmp16")
    first = rig.get("kitchen", f"{ids[0]}.bmp").content
    assert wait_for(lambda: rig.metric("cache_files") == 2)

    rig.restart()
    # The retained manifest comes back from the broker; the files from the disk.
    assert wait_for(lambda: rig.service.roster.count("kitchen") == 2)
    assert rig.get("kitchen", f"{ids[0]}.bmp").content == first
    assert rig.get("kitchen", f"{ids[1]}.bmp").status_code == 200
    assert [rig.thumbs(a) for a in ids] == [1, 1]
    assert rig.metric("cache_hits_total") == 2


def test_lru_eviction_beyond_the_limit(start_rig: StartRig) -> None:
    # Room for 3 bmp16 files of 307,266 bytes; one worker pre-renders in picture id order.
    rig = start_rig(cache_limit_mb=1, workers=1)
    ids = sorted(small_assets(rig.fake, 5))
    rig.publish_manifest("kitchen", versions(ids), "bmp16")
    assert wait_for(lambda: rig.metric("prerenders_total") == 5)
    assert rig.metric("cache_files") == 3
    assert rig.metric("cache_bytes") == 3 * BMP16_SIZE
    assert rig.metric("cache_evictions_total") == 2

    assert rig.get("kitchen", f"{ids[2]}.bmp").status_code == 200  # hit: now most recent
    assert rig.get("kitchen", f"{ids[0]}.bmp").status_code == 200  # evicted: rendered again
    assert rig.thumbs(ids[0]) == 2
    # That render pushed out the least recently used file, ids[3], not the one just read.
    assert rig.get("kitchen", f"{ids[2]}.bmp").status_code == 200
    assert rig.thumbs(ids[2]) == 1
    assert rig.get("kitchen", f"{ids[3]}.bmp").status_code == 200
    assert rig.thumbs(ids[3]) == 2
    assert rig.metric("cache_files") == 3


# -- manifests -------------------------------------------------------------------------------


def test_malformed_manifest_keeps_the_previous_one(start_rig: StartRig) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 1)
    rig.publish_manifest("kitchen", versions(ids), "bmp16")
    topic = f"{BASE}/kitchen/manifest"
    for payload in (b"{not json", b'{"v": 1}', "\u00ff".encode("latin-1"), b"[]"):
        rig.link.publish(topic, payload)
    rig.link.publish(topic + "/all", b"garbage line\n")
    assert wait_for(lambda: rig.metric("manifest_rejected_total") == 5)
    assert rig.get("kitchen", f"{ids[0]}.bmp").status_code == 200


def test_a_page_holding_another_shards_picture_is_rejected(
    start_rig: StartRig, caplog: pytest.LogCaptureFixture
) -> None:
    rig = start_rig()
    ids = small_assets(rig.fake, 2)
    rig.publish_manifest("kitchen", versions(ids[:1]), "bmp16")
    assert wait_for(lambda: rig.metric("prerenders_total") == 1)
    stray = ids[1]
    shard = "1" if stray.endswith("0") else "0"  # any shard but the stray's own
    rig.link.publish(f"{BASE}/kitchen/manifest/{shard}", manifest.page_bytes(versions([stray])))
    assert wait_for(lambda: rig.metric("manifest_rejected_total") == 1)
    assert f"malformed manifest page {shard} for frame kitchen" in caplog.text
    assert rig.metric("prerenders_total") == 1
    assert rig.thumbs(stray) == 0
    assert rig.get("kitchen", f"{ids[0]}.bmp").status_code == 200


def test_roster_rejects_a_page_holding_ids_of_another_shard() -> None:
    roster = Roster(["kitchen"])
    pictures = {f"00000000-0000-4000-8000-{i:012x}": "0000000a" for i in range(1, 201)}
    built = manifest.build(pictures, None, "http://x/", "bmp16", 0)
    assert built.width == 1
    for shard, page in built.pages.items():
        assert roster.apply("kitchen", shard, page).accepted
    assert roster.apply("kitchen", None, built.summary).accepted
    zeros = {pid: v for pid, v in pictures.items() if pid.endswith("0")}
    one = "00000000-0000-4000-8000-0000000fff01"
    zero = "00000000-0000-4000-8000-0000000fff00"
    for stray in (one, f"{one}+{zero}"):
        rejected = roster.apply("kitchen", "0", manifest.page_bytes({**zeros, stray: "0000000b"}))
        assert (rejected.accepted, dict(rejected.added)) == (False, {})
        assert roster.version("kitchen", stray) is None
    assert roster.entries("kitchen") == pictures  # the previous page "0" is kept
    # A pair belongs to its first asset's shard; pages of a coming width are taken as before.
    pair = f"{zero}+{one}"
    assert roster.apply("kitchen", "0", manifest.page_bytes({**zeros, pair: "0000000b"})).added
    assert roster.version("kitchen", pair) == "0000000b"
    ahead = manifest.page_bytes({"00000000-0000-4000-8000-0000000000ab": "0000000c"})
    assert roster.apply("kitchen", "ab", ahead).accepted
    assert roster.apply("kitchen", "ab", manifest.page_bytes({one: "0000000c"})).accepted is False


def test_roster_follows_width_changes() -> None:
    roster = Roster(["kitchen"])
    one = {f"00000000-0000-4000-8000-0000000000{i:02x}": "0000000a" for i in range(3)}
    built = manifest.build(one, None, "http://x/", "bmp16", 0)
    added: dict[str, str] = {}
    for shard, page in built.pages.items():
        added.update(roster.apply("kitchen", shard, page).added)
    assert added == one
    assert roster.version("kitchen", next(iter(one))) is None  # no summary yet
    assert roster.apply("kitchen", None, built.summary).summary_changed
    assert roster.entries("kitchen") == one
    # A page not named by the summary is not served; a malformed one is rejected.
    assert roster.apply("kitchen", "ab", b"x\n").accepted is False
    assert roster.apply("kitchen", None, b"").accepted
    assert roster.version("kitchen", next(iter(one))) is None


def test_roster_rejects_messages_over_the_protocol_limits() -> None:
    roster = Roster(["kitchen"])
    pid = "00000000-0000-4000-8000-000000000001"
    page = {pid: "0000000a"}
    built = manifest.build(page, None, "http://x/", "bmp16", 0)
    assert roster.apply("kitchen", None, built.summary).accepted
    assert roster.apply("kitchen", "all", built.pages["all"]).accepted
    # Well-formed but past 8192 bytes: a page of 200 lines, a summary padded with a long url.
    big = {f"00000000-0000-4000-8000-{i:012x}": "0000000b" for i in range(1, 201)}
    assert len(manifest.page_bytes(big)) > manifest.PAGE_LIMIT
    rejected = roster.apply("kitchen", "all", manifest.page_bytes(big))
    assert (rejected.accepted, dict(rejected.added)) == (False, {})
    padded = built.summary.replace(b'"url":"http://x/"', b'"url":"http://x/' + b"p" * 9000 + b'"')
    assert len(padded) > manifest.SUMMARY_LIMIT
    assert roster.apply("kitchen", None, padded).accepted is False
    assert roster.entries("kitchen") == page
    assert roster.summary("kitchen") is not None
    assert roster.summary("kitchen").url == "http://x/"  # type: ignore[union-attr]


# -- other sources ---------------------------------------------------------------------------


def test_portrait_pair_and_folder_photo(start_rig: StartRig) -> None:
    rig = start_rig()
    a, b = (rig.fake.add_asset(favorite=True, width=640, height=960) for _ in range(2))
    photo = rig.tmp / "photos" / "trip" / "beach.jpg"
    photo.parent.mkdir(parents=True)
    Image.new("RGB", (900, 600), (20, 120, 200)).save(photo)
    folder_id = folder_asset_id("trip/beach.jpg")
    rig.publish_manifest("kitchen", {f"{a}+{b}": "0000000a", folder_id: "0000000b"}, "bmp16")

    pair = rig.get("kitchen", f"{a}+{b}.bmp")
    assert pair.status_code == 200
    bmp_ok(pair.content, BMP16_SIZE, 16)
    assert (rig.thumbs(a), rig.thumbs(b)) == (1, 1)

    before = rig.fake.count("/assets")
    image = bmp_ok(rig.get("kitchen", f"{folder_id}.bmp").content, BMP16_SIZE, 16)
    assert rig.fake.count("/assets") == before  # straight from the folder
    r, g, b_ = image.getpixel((240, 160))  # type: ignore[misc]
    assert abs(r - 20) < 16 and abs(g - 120) < 16 and abs(b_ - 200) < 16


# -- as users run it -------------------------------------------------------------------------


def test_python_m_renderer_serves_and_stops_on_sigterm(
    broker: Mosquitto, fake: FakeImmich, tmp_path: Path
) -> None:
    port = free_port()
    doc = rig_config(broker, fake, tmp_path, port)
    doc["immich"]["api_key"] = "${IMMICH_KEY}"
    config_file = tmp_path / "titanoframe.yaml"
    config_file.write_text(yaml.safe_dump(doc))
    notify_path = str(tmp_path / "notify")  # as systemd runs it: Type=notify with a watchdog
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.settimeout(30)
    env = {**os.environ, "IMMICH_KEY": fake.api_key, "TITANOFRAME_LOG_LEVEL": "DEBUG"}
    env |= {"NOTIFY_SOCKET": notify_path, "WATCHDOG_USEC": "1000000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "renderer", "--config", str(config_file)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert [notify.recv(64), notify.recv(64)] == [b"READY=1", b"WATCHDOG=1"]
        health = f"http://127.0.0.1:{port}/healthz"
        assert wait_for(lambda: (_answers(health) or {}).get("broker") == "connected")
        ids = small_assets(fake, 1)
        built = manifest.build(versions(ids), None, frame_url(port, "kitchen"), "bmp16", 0)
        link = BridgeLink(broker)
        for topic, payload in manifest.diff(manifest.Retained(None, {}), built).messages(
            BASE, "kitchen"
        ):
            link.publish(topic, payload)
        link.close()
        url = frame_url(port, "kitchen") + f"{ids[0]}.bmp?token={USERS['kitchen']}"
        assert wait_for(lambda: requests.get(url, timeout=30).status_code == 200)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        while (said := notify.recv(64)) == b"WATCHDOG=1":
            pass
        assert said == b"STOPPING=1"
    finally:
        notify.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stderr.read() if proc.stderr else ""
    assert "renderer stopped" in log
    for secret in (fake.api_key, USERS["kitchen"], USERS["renderer"], URL_KEY):
        assert secret not in log
    assert not re.search(r"Traceback|leaked", log), log


def _answers(url: str) -> dict[str, Any] | None:
    try:
        body = requests.get(url, timeout=5).json()
        return body if isinstance(body, dict) else None
    except (requests.RequestException, json.JSONDecodeError):
        return None


def test_a_cache_dir_that_cannot_be_made_is_named_and_stops_the_start(
    broker: Mosquitto, fake: FakeImmich, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache directory should go")
    doc = rig_config(broker, fake, tmp_path, free_port(), cache_dir=str(blocker / "cache"))
    config_file = tmp_path / "titanoframe.yaml"
    config_file.write_text(yaml.safe_dump(doc))
    done = subprocess.run(
        [sys.executable, "-m", "renderer", "--config", str(config_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"renderer.cache_dir '{blocker / 'cache'}': Not a directory" in done.stderr
    assert "cannot listen" not in done.stderr

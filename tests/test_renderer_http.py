"""The renderer's HTTP API against real servers on loopback: Mosquitto (manifests published as
the bridge publishes them), the fake Immich, and the renderer itself, in-process on a free port
or as `python -m renderer` for the smoke test.

The harness at the top (`RendererRig`, `start_rig`) is shared with the fuzz test.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import requests
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image

from bridge import manifest
from bridge.config import Config, parse_config
from bridge.folderids import folder_asset_id
from renderer import signing
from renderer.roster import Roster
from renderer.service import Service
from tests.bmpcheck import read_bmp
from tests.broker import USERS, Mosquitto, free_port
from tests.fakes.immich import FakeImmich

ROOT = Path(__file__).resolve().parent.parent
BASE = "titanoframe"
URL_KEY = "url-key-5b0e9f3c2d7a"
BMP16_SIZE = 307_266
BMP8_SIZE = 154_678


def frame_url(port: int, frame: str) -> str:
    return f"http://127.0.0.1:{port}/v1/frames/{frame}/pictures/"


def bearer(frame: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {USERS[frame]}"}


def rig_config(
    broker: Mosquitto, fake: FakeImmich, tmp: Path, port: int, **renderer: Any
) -> dict[str, Any]:
    """A config document as a user writes it: two frames with secrets, one without."""
    (tmp / "photos").mkdir(exist_ok=True)
    return {
        "immich": {"url": fake.url, "api_key": fake.api_key},
        "mqtt": {"host": broker.host, "port": broker.port, "base_topic": BASE},
        "renderer": {
            "listen": f"127.0.0.1:{port}",
            "public_url": f"http://127.0.0.1:{port}",
            "cache_dir": str(tmp / "cache"),
            "url_key": URL_KEY,
            "mqtt_password": USERS["renderer"],
            "workers": 2,
            "upstream_timeout": 5,
            **renderer,
        },
        "frames": {
            "kitchen": {
                "secret": USERS["kitchen"],
                "sources": [{"favorites": True}, {"folder": str(tmp / "photos")}],
                "image": {"format": "bmp16", "fit": "blur"},
            },
            "hall": {
                "secret": USERS["hall"],
                "sources": [{"favorites": True}],
                "image": {"format": "bmp8", "fit": "cover", "caption": "{taken:%b %Y} {city}"},
            },
            "open": {"sources": [{"favorites": True}], "image": {"format": "bmp16"}},
        },
    }


class RendererThread:
    """A `Service` on its own event loop in a background thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.port = config.renderer.port
        self.service = Service(config)
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def run() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            await self.service.start()
            self._ready.set()
            try:
                await self._stop.wait()
            finally:
                await self.service.stop()

        try:
            asyncio.run(run())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    def start(self) -> RendererThread:
        self._thread.start()
        assert self._ready.wait(30), "renderer did not start"
        if self._error is not None:
            raise self._error
        assert self.service.membership.wait_connected(10), "renderer did not reach the broker"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


class BridgeLink:
    """One connection as user `bridge`, kept open: publishing costs a round trip, not a login."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"rig-{time.monotonic_ns()}"
        )
        self.client.username_pw_set("bridge", broker.users["bridge"])
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=True)
        info.wait_for_publish(5)
        assert info.is_published()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class RendererRig:
    """Broker + fake Immich + renderer, with the bridge's way of publishing manifests."""

    def __init__(self, broker: Mosquitto, fake: FakeImmich, tmp: Path, config: Config) -> None:
        self.broker, self.fake, self.tmp, self.config = broker, fake, tmp, config
        self.port = config.renderer.port
        self.retained: dict[str, manifest.Retained] = {}
        self.link = BridgeLink(broker)
        self.renderer = RendererThread(config).start()

    def close(self) -> None:
        self.renderer.stop()
        self.link.close()

    @property
    def service(self) -> Service:
        return self.renderer.service

    def url(self, frame: str, name: str) -> str:
        return frame_url(self.port, frame) + name

    def get(self, frame: str, name: str, **kwargs: Any) -> requests.Response:
        headers = {**(bearer(frame) if frame in USERS else {}), **kwargs.pop("headers", {})}
        return requests.get(self.url(frame, name), headers=headers, timeout=30, **kwargs)

    def publish_manifest(self, frame: str, pictures: Mapping[str, str], fmt: str) -> None:
        """Publish like the bridge (changed pages, summary, cleared pages) and wait for it."""
        built = manifest.build(pictures, None, frame_url(self.port, frame), fmt, int(time.time()))
        old = self.retained.get(frame, manifest.Retained(None, {}))
        for topic, payload in manifest.diff(old, built).messages(BASE, frame):
            self.link.publish(topic, payload)
        self.retained[frame] = manifest.Retained(built.summary, dict(built.pages))
        assert wait_for(lambda: self.service.roster.entries(frame) == dict(pictures))

    def restart(self, config: Config | None = None) -> None:
        self.renderer.stop()
        self.config = config or self.config
        self.renderer = RendererThread(self.config).start()

    def metric(self, name: str) -> float:
        """A series' value from /metrics, e.g. `cache_hits_total` or `requests_total{…}`."""
        text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=10).text
        prefix = f"titanoframe_renderer_{name} "
        lines = [line for line in text.splitlines() if line.startswith(prefix)]
        return float(lines[0].split()[-1]) if lines else 0.0

    def thumbs(self, asset_id: str) -> int:
        return self.fake.count(f"/assets/{asset_id}/thumbnail")


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def fake() -> Iterator[FakeImmich]:
    with FakeImmich() as f:
        yield f


StartRig = Callable[..., RendererRig]


@pytest.fixture
def start_rig(broker: Mosquitto, fake: FakeImmich, tmp_path: Path) -> Iterator[StartRig]:
    """Start a rig; keyword arguments override `renderer:` keys of the config."""
    rigs: list[RendererRig] = []

    def start(**renderer: Any) -> RendererRig:
        limit_mb = renderer.pop("cache_limit_mb", None)
        immich_url = renderer.pop("immich_url", None)
        doc = rig_config(broker, fake, tmp_path, free_port(), **renderer)
        if immich_url is not None:
            doc["immich"]["url"] = immich_url
        config = parse_config(doc, {}, tmp_path)
        if limit_mb is not None:  # below the config's minimum, to see eviction with few files
            config = replace(config, renderer=replace(config.renderer, cache_max_mb=limit_mb))
        rig = RendererRig(broker, fake, tmp_path, config)
        rigs.append(rig)
        return rig

    yield start
    for rig in rigs:
        rig.close()


def small_assets(fake: FakeImmich, n: int, **kwargs: Any) -> list[str]:
    """Favourites with small originals, so the fake's previews are cheap to make."""
    return [fake.add_asset(favorite=True, width=960, height=640, **kwargs) for _ in range(n)]


def bmp_ok(data: bytes, size: int, bpp: int) -> Image.Image:
    """The download is exactly what the board reads: 480×320 at the profile's depth."""
    assert len(data) == size
    bmp = read_bmp(data)
    assert (bmp.width, bmp.height, bmp.bpp) == (480, 320, bpp)
    return bmp.image


def versions(ids: list[str], v: str = "0000000a") -> dict[str, str]:
    return dict.fromkeys(ids, v)


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
    with Image.open(__import__("io").BytesIO(jpg.content)) as img:
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
    env = {**os.environ, "IMMICH_KEY": fake.api_key, "TITANOFRAME_LOG_LEVEL": "DEBUG"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "renderer", "--config", str(config_file)],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
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
    finally:
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

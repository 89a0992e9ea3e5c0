"""Shared harness of the renderer tests: real servers on loopback (Mosquitto, the fake Immich,
the renderer in-process on a free port) and the bridge's way of publishing manifests.

Test modules take the fixtures by assigning them (`fake = rendererkit.fake`,
`start_rig = rendererkit.start_rig`) and call `start_rig(**renderer_overrides)`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image

from common import manifest
from common.config import Config, parse_config
from renderer.service import Service
from tests.kit.bmpcheck import read_bmp
from tests.kit.broker import USERS, Mosquitto, free_port
from tests.kit.fakes.immich import FakeImmich

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

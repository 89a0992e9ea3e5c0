"""Helpers for the bridge's tests: a config for the fake Immich and the test broker, a bridge
driven by an injected clock, and an MQTT 5 observer that sees what the broker retains."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from bridge.service import Service
from common import manifest
from common.config import (
    BridgeConfig,
    Config,
    FrameConfig,
    ImmichConfig,
    MqttConfig,
    RendererConfig,
    Source,
)
from tests.kit.broker import USERS, Mosquitto
from tests.kit.fakes.immich import FakeImmich
from tests.kit.mqttc import Collector

BASE = "titanoframe"
START = datetime(2025, 11, 23, 9, 0, tzinfo=UTC)
URL_KEY = "test-url-key-4d1c"
FAVORITES = (Source("favorites", True),)


def frame(
    frame_id: str = "kitchen", sources: tuple[Source, ...] = FAVORITES, **kw: Any
) -> FrameConfig:
    return FrameConfig(id=frame_id, secret=USERS.get(frame_id), sources=sources, **kw)


def config(
    broker: Mosquitto,
    fake: FakeImmich | None,
    frames: Iterable[FrameConfig] = (),
    **bridge: Any,
) -> Config:
    options: dict[str, Any] = {"poll_interval": 30.0, "full_scan_interval": 3600.0}
    options["metrics_listen"] = None
    options.update(bridge)
    return Config(
        immich=ImmichConfig(fake.url, fake.api_key, timeout=2.0) if fake else None,
        mqtt=MqttConfig(host=broker.host, port=broker.port, password=USERS["bridge"]),
        renderer=RendererConfig(public_url="http://renderer.test:8080", url_key=URL_KEY),
        bridge=BridgeConfig(**options),
        frames=tuple(frames) or (frame(),),
    )


def with_profile(cfg: Config, frame_id: str, **image: Any) -> Config:
    frames = tuple(
        replace(f, image=replace(f.image, **image)) if f.id == frame_id else f for f in cfg.frames
    )
    return replace(cfg, frames=frames)


class Bridge:
    """A started `Service` and its clock; `step()` moves the clock one poll interval on."""

    def __init__(self, cfg: Config, now: datetime = START) -> None:
        self.service = Service(cfg)
        self.now = now
        self.service.start(now)

    def tick(self, seconds: float = 0.0) -> None:
        self.now += timedelta(seconds=seconds)
        self.service.tick(self.now)

    def step(self) -> None:
        """One poll interval later: a delta poll (or a full walk when one is due)."""
        self.tick(self.service.config.bridge.poll_interval)

    def walk(self) -> None:
        """Far enough on that the next poll is a full walk."""
        self.tick(self.service.config.bridge.full_scan_interval)

    def pump(self, until: Callable[[], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.service.handle_events(0.05)
            self.service.tick(self.now)
            if until():
                return True
        return False

    @property
    def published(self) -> int:
        return self.service.link.messages_published

    def close(self) -> None:
        self.service.close()


class Observer(Collector):
    """An MQTT 5 client (user `homeassistant` by default) recording every message it gets,
    with the retain flag as published."""

    def __init__(self, broker: Mosquitto, topic: str = "#", user: str = "homeassistant") -> None:
        super().__init__(broker, user, protocol=mqtt.MQTTv5)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.subscribe(topic, options=SubscribeOptions(qos=1, retainAsPublished=True))
        assert subscribed.wait(5)
        self.sync()

    def sync(self, settle: float = 0.1) -> None:
        """Wait until no message has arrived for `settle` seconds."""
        last = -1
        while True:
            time.sleep(settle)
            with self.lock:
                if len(self.messages) == last:
                    return
                last = len(self.messages)

    def take(self) -> list[tuple[str, bytes, bool]]:
        """Messages since the last take (after letting the traffic settle)."""
        self.sync()
        with self.lock:
            found, self.messages = self.messages, []
        return found


def retained(
    broker: Mosquitto, topic: str = f"{BASE}/#", user: str = "homeassistant"
) -> dict[str, bytes]:
    """What the broker retains under `topic` now, read by a fresh client."""
    obs = Observer(broker, topic, user)
    obs.close()
    with obs.lock:
        return {t: p for t, p, r in obs.messages if r and p}


def manifest_of(held: dict[str, bytes], frame_id: str = "kitchen") -> dict[str, str]:
    """{picture id: version} of a frame's retained manifest, checked against its summary."""
    summary = manifest.parse_summary(held[f"{BASE}/{frame_id}/manifest"])
    assert summary is not None
    found: dict[str, str] = {}
    for shard, digest in summary.shards.items():
        page = held[f"{BASE}/{frame_id}/manifest/{shard}"]
        assert manifest.crc_hex(page) == digest
        entries = manifest.parse_page(page)
        assert entries is not None
        found.update(entries)
    assert len(found) == summary.count
    return found

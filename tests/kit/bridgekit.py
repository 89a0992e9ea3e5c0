"""Helpers for the bridge's tests: a config for the fake Immich and the test broker, a bridge
driven by an injected clock, and an MQTT 5 observer that sees what the broker retains."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions

from bridge.service import Service
from common import manifest
from common.brokerauth import RESERVED_USERS
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
from tests.kit.mqttc import Collector, publish

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
    # removal_hold 0: a full walk alone confirms a mass removal, unless a test asks for a hold.
    options: dict[str, Any] = {"poll_interval": 30.0, "full_scan_interval": 3600.0}
    options["removal_hold"] = 0.0
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

    def barrier(self) -> None:
        """Return once the bridge has acted on every message the broker sent it before now: its
        link's own barrier (its `online` comes back after them), the events they queued, a tick."""
        self.service.link.barrier()
        self.service.handle_events(0)
        self.service.tick(self.now)

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


def marker_topic(user: str) -> str:
    """Where barrier markers for `user` go: a topic the bridge's user may write and `user` may
    read that no program listens to (a frame's own `cmd/barrier`, which no frame runs here and
    the bridge leaves alone when it is not retained; for the services, under `<base>/bridge/`)."""
    return f"{BASE}/bridge/barrier" if user in RESERVED_USERS else f"{BASE}/{user}/cmd/barrier"


def is_marker(topic: str) -> bool:
    return topic == f"{BASE}/bridge/barrier" or (
        topic.startswith(f"{BASE}/") and topic.endswith("/cmd/barrier")
    )


class Observer(Collector):
    """An MQTT 5 client (user `homeassistant` by default) recording every message it gets,
    with the retain flag as published; barrier markers are not recorded."""

    def __init__(self, broker: Mosquitto, topic: str = "#", user: str = "homeassistant") -> None:
        super().__init__(broker, user, protocol=mqtt.MQTTv5)
        self.broker = broker
        self.marker = marker_topic(user)
        self.markers: set[bytes] = set()
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: subscribed.set()
        options = SubscribeOptions(qos=1, retainAsPublished=True)
        self.client.subscribe([(topic, options), (self.marker, options)])
        assert subscribed.wait(5)
        self.barrier()  # what the broker retains under `topic` has arrived

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if is_marker(msg.topic):
            with self.lock:
                self.markers.add(bytes(msg.payload))
        else:
            super()._on_message(client, userdata, msg)

    def barrier(self, timeout: float = 10.0) -> None:
        """Return once every message the broker queued for this client before now has arrived.

        A marker published now (QoS 1, acknowledged) reaches this client after all of them: the
        broker hands a client its messages in the order it took them in.
        """
        token = uuid.uuid4().hex.encode()
        publish(self.broker, "bridge", self.marker, token)
        assert self.wait_for(lambda _: token in self.markers, timeout), "no barrier echo"

    def take(self) -> list[tuple[str, bytes, bool]]:
        """Messages since the last take, once everything sent before now has arrived."""
        self.barrier()
        with self.lock:
            found, self.messages = self.messages, []
        return found


BRIDGE_STATE = f"{BASE}/bridge/state"


def retained(
    broker: Mosquitto, topic: str = f"{BASE}/#", user: str = "homeassistant", state: bool = False
) -> dict[str, bytes]:
    """What the broker retains under `topic` now, read by a fresh client. The bridge's own
    state (`<base>/bridge/state`, which changes with every poll) only when `state`."""
    obs = Observer(broker, topic, user)
    obs.close()
    with obs.lock:
        return {t: p for t, p, r in obs.messages if r and p and (state or t != BRIDGE_STATE)}


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

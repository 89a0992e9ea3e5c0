"""Home Assistant's view of the frames: device discovery published, kept and removed over MQTT.
Does I/O (through `MqttLink`).

Discovery payloads come from `bridge.discovery` (pure). Here the bridge remembers what the
broker retains on `<prefix>/device/+/config` (fed from paho's thread), publishes a frame's
device only when the broker does not already hold exactly that payload, removes the devices of
frames no longer configured, and publishes everything again when Home Assistant announces
itself `online` (it may have lost its entities).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from importlib import metadata

from bridge import discovery
from bridge.metrics import Metrics
from bridge.mqtt import MqttError, MqttLink
from common import topics

log = logging.getLogger(__name__)

ACK_TIMEOUT = 30.0
# Home Assistant's default birth topic, whatever discovery prefix the bridge uses.
HA_STATUS = "homeassistant/status"


def sw_version() -> str:
    try:
        return metadata.version("titanoframe")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class HomeAssistant:
    """Discovery for the configured frames on one broker."""

    def __init__(
        self, link: MqttLink, prefix: str, base: str, frames: Iterable[str], metrics: Metrics
    ) -> None:
        self.link = link
        self.prefix = prefix
        self.base = base
        self.frames = tuple(frames)
        self.metrics = metrics
        self._lock = threading.Lock()
        self._seen: dict[str, bytes] = {}

    @property
    def status_topics(self) -> list[str]:
        """Where Home Assistant announces itself (its birth and last will)."""
        return list(dict.fromkeys([topics.ha_status(self.prefix), HA_STATUS]))

    def is_discovery(self, topic: str) -> bool:
        return topic.startswith(f"{self.prefix}/device/") and topic.endswith("/config")

    def seen(self, topic: str, payload: bytes) -> None:
        """A retained discovery payload the broker holds (paho's thread)."""
        with self._lock:
            self._seen[topic] = payload

    def forget(self) -> None:
        """Forget what the broker held, before reading it back again."""
        with self._lock:
            self._seen.clear()

    def publish(self, force: bool) -> None:
        """Publish each frame's device (all when `force`, else only the ones that differ) and
        remove the devices of frames no longer configured."""
        version = sw_version()
        with self._lock:
            seen = dict(self._seen)
        messages = []
        for frame_id in self.frames:
            topic, payload = discovery.message(self.prefix, frame_id, self.base, version)
            if force or seen.get(topic) != payload:
                messages.append((topic, payload))
        for frame_id in discovery.stale(self.frames, seen, self.prefix, self.base):
            log.info("removing Home Assistant device of frame %s (no longer configured)", frame_id)
            messages.append(discovery.removal(self.prefix, frame_id))
        if not messages:
            return
        try:
            self.link.publish_all(messages, retain=True, timeout=ACK_TIMEOUT)
        except MqttError as exc:
            self.metrics.inc("mqtt_errors_total")
            log.error("Home Assistant discovery not published: %s", exc)
            return
        with self._lock:
            self._seen.update(messages)

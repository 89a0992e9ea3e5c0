"""Home Assistant's view of the frames and the bridge: device discovery published, kept and
removed over MQTT. Does I/O (through `MqttLink`).

Discovery payloads come from `bridge.discovery` and `bridge.bridgedevice` (pure). A frame's
device carries the firmware version the frame reports in its state, so a frame's state that
names a new version brings its device up to date. Here the bridge remembers what the
broker retains on `<prefix>/device/+/config` (fed from paho's thread), publishes a frame's
device only when the broker does not already hold exactly that payload, removes the devices of
frames no longer configured, and publishes everything again when Home Assistant announces
itself `online` (it may have lost its entities).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable

from bridge import bridgedevice, discovery
from bridge.bridgestate import VERSION
from bridge.metrics import Metrics
from bridge.mqtt import MqttError, MqttLink
from common import topics

log = logging.getLogger(__name__)

ACK_TIMEOUT = 30.0
# Home Assistant's default birth topic, whatever discovery prefix the bridge uses.
HA_STATUS = "homeassistant/status"


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
        self._versions: dict[str, str] = {}

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

    def frame_version(self, frame_id: str, version: object) -> bool:
        """The version a frame's state reports; True when it is news (publish again)."""
        if not isinstance(version, str) or not version or len(version) > 64:
            return False
        with self._lock:
            if self._versions.get(frame_id) == version:
                return False
            self._versions[frame_id] = version
        return True

    def _messages(self, version: str, seen: dict[str, bytes]) -> list[tuple[str, bytes]]:
        with self._lock:
            versions = dict(self._versions)
        messages = []
        for frame_id in self.frames:
            firmware = versions.get(frame_id) or _held_version(seen, self.prefix, frame_id)
            messages.append(
                discovery.message(self.prefix, frame_id, self.base, version, None, firmware)
            )
        bridge_topic = topics.bridge_discovery(self.prefix, self.base)
        messages.append(
            bridgedevice.message(self.prefix, self.base, version, previous=seen.get(bridge_topic))
        )
        return messages

    def publish(self, force: bool) -> None:
        """Publish each frame's device (all when `force`, else only the ones that differ) and
        remove the devices of frames no longer configured."""
        version = VERSION
        with self._lock:
            seen = dict(self._seen)
        messages = [
            (topic, payload)
            for topic, payload in self._messages(version, seen)
            if force or seen.get(topic) != payload
        ]
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


def _held_version(seen: dict[str, bytes], prefix: str, frame_id: str) -> str | None:
    """The frame's firmware version in the device payload the broker holds, if any: until the
    frame's own state says otherwise, a restarted bridge keeps what it published before."""
    held = seen.get(topics.discovery(prefix, frame_id))
    try:
        doc = json.loads(held.decode()) if held else None
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    dev = doc.get("dev") if isinstance(doc, dict) else None
    sw = dev.get("sw") if isinstance(dev, dict) else None
    return sw if isinstance(sw, str) else None

"""The renderer's MQTT link: reads every frame's retained manifest into a `Roster`. Does I/O.

Connects as user `renderer` (read-only on manifests by the broker's ACL; it may publish only
casts), subscribes to
`<base>/+/manifest` and `<base>/+/manifest/+`, and keeps what it learned while the broker is
away: frames keep downloading during a broker restart. A malformed payload is logged and
ignored. Pictures new to a manifest are handed to `on_added` (called on the MQTT thread) so the
service can pre-render them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt

from common import mqttclient, topics
from common.config import MqttConfig
from renderer.metrics import Metrics
from renderer.roster import Roster

log = logging.getLogger(__name__)

USERNAME = "renderer"

OnAdded = Callable[[str, Mapping[str, str]], None]


class Membership:
    """One paho client in its own network thread, reconnecting on its own."""

    def __init__(
        self,
        config: MqttConfig,
        password: str | None,
        roster: Roster,
        on_added: OnAdded,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.roster = roster
        self.on_added = on_added
        self.metrics = metrics
        self._connected = threading.Event()
        self._stopping = False
        client_id = mqttclient.client_id("renderer")
        self.client = mqttclient.make_client(config, client_id, USERNAME, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_connect_fail = self._on_connect_fail
        self.client.on_message = self._on_message

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def start(self) -> None:
        """Connect in the background; a broker that is down now is retried, never fatal."""
        self.client.connect_async(
            self.config.host, self.config.port, keepalive=mqttclient.KEEPALIVE
        )
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self._set_connected(False)

    def publish(self, topic: str, payload: bytes) -> bool:
        """Publish one message at QoS 1, not retained (casts); False when it cannot go out."""
        if not self.connected:
            return False
        info = self.client.publish(topic, payload, qos=1, retain=False)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    def _set_connected(self, value: bool) -> None:
        if value:
            self._connected.set()
        else:
            self._connected.clear()
        self.metrics.set("broker_connected", 1 if value else 0)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the renderer's login: %s", reason)
            return
        base = self.config.base_topic
        client.subscribe(
            [
                (topics.frames_filter(base, "manifest"), 1),
                (topics.frames_filter(base, "manifest/+"), 1),
            ]
        )
        self._set_connected(True)
        log.info("connected to broker %s:%d", self.config.host, self.config.port)

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho retries on its own, backing off to 30 s: one line per attempt is enough.
        log.warning("cannot reach broker %s:%d; retrying", self.config.host, self.config.port)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self.connected and not self._stopping:
            log.warning("lost the broker (%s); keeping the manifests already known", reason)
        self._set_connected(False)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        # An exception escaping a paho callback would end the network thread: contain it.
        try:
            self.handle(msg.topic, bytes(msg.payload))
        except Exception:
            log.exception("could not handle a message on %r", msg.topic)

    def handle(self, topic: str, payload: bytes) -> None:
        """Apply one manifest message (public so tests can feed messages without a broker)."""
        parsed = topics.parse_manifest(self.config.base_topic, topic)
        if parsed is None:
            return
        frame, shard = parsed
        if not self.roster.knows(frame):
            return
        applied = self.roster.apply(frame, shard, payload)
        if not applied.accepted:
            self.metrics.inc("manifest_rejected_total")
            log.warning(
                "ignored a malformed manifest %s for frame %s (%d bytes); keeping the previous one",
                "summary" if shard is None else f"page {shard}",
                frame,
                len(payload),
            )
            return
        self.metrics.set("manifest_pictures", self.roster.count(frame), frame=frame)
        if applied.added:
            self.on_added(frame, applied.added)

"""The bridge's MQTT link: one paho 2.x client speaking MQTT 5 in its own thread. Does I/O.

What it adds to paho:

- a last will (`offline`, retained, QoS 1) and an `online` retained status on every connect;
- subscriptions remembered and renewed after each reconnect (paho reconnects on its own);
- `barrier()`: the link announces `online` again and waits for that message to come back, so
  every retained message its earlier subscriptions delivered has been handed over by then —
  how the bridge reads manifests and discovery back before deciding what to publish (a fresh
  `online` is the one message every subscriber already expects from the bridge);
- `publish_all()`: QoS 1 publishes waited for until the broker has acknowledged each one;
- paho's errors turned into `MqttError`s, and a handler that raises never ends paho's thread.

Messages reach `on_message` on paho's network thread; the handler must not block on the link.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from common import mqttclient
from common.config import MqttConfig

log = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"


class MqttError(Exception):
    """Base of every broker failure; the message is one line, safe to log."""


class MqttUnreachable(MqttError):
    """Not connected to the broker (down, refused, or the connection was lost)."""


class MqttAuthError(MqttError):
    """The broker refused the bridge's user name or password."""


class MqttTimeout(MqttError):
    """The broker did not acknowledge in time."""


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    # With retain-as-published subscriptions, True also for a live message sent retained.
    retain: bool


Handler = Callable[[Message], None]


class MqttLink:
    """A connected paho client; `start()`, then `wait_connected()`, then use; `close()` ends it."""

    def __init__(
        self,
        config: MqttConfig,
        status_topic: str,
        on_message: Handler,
        client_id: str | None = None,
    ) -> None:
        self.config = config
        self.status_topic = status_topic
        self.on_message = on_message
        self.client_id = client_id or mqttclient.client_id("bridge")
        self.connections = 0  # successful connects so far; a change means "read back again"
        self.messages_published = 0
        self.bytes_published = 0
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._auth_failed: str | None = None
        self._closing = False
        # filter -> retain-as-published; our own status first, so barriers hear the echo.
        # Subscriptions: filter → (retain as published, no local).
        self._subs: dict[str, tuple[bool, bool]] = {status_topic: (False, False)}
        self._acks: dict[int, threading.Event] = {}
        self._early_acks: set[int] = set()
        # Subscriptions nobody waits for (renewals, timed-out waits): their acks are dropped,
        # so a message id reused after the wrap cannot find a stale ack waiting for it.
        self._unwaited: set[int] = set()
        # `online` messages sent and heard back since the current connection began.
        self._echo = threading.Condition()
        self._online_sent = 0
        self._online_heard = 0
        self._client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        cfg = self.config
        c = mqttclient.make_client(cfg, self.client_id, cfg.username, cfg.password, mqtt.MQTTv5)
        c.will_set(self.status_topic, OFFLINE, qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        return c

    # -- connection ------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        """Connect in the background; paho keeps retrying while the broker is away."""
        try:
            self._client.connect_async(
                self.config.host, self.config.port, keepalive=mqttclient.KEEPALIVE
            )
        except (OSError, ValueError) as exc:
            raise MqttUnreachable(f"cannot connect to {self._where()}: {exc}") from None
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """True once connected; raises MqttAuthError when the broker refused the login."""
        deadline = time.monotonic() + timeout
        while not self._connected.wait(min(0.05, max(0.0, deadline - time.monotonic()))):
            if self._auth_failed is not None:
                raise MqttAuthError(
                    f"the broker at {self._where()} refused user {self.config.username!r}: "
                    f"{self._auth_failed}"
                )
            if time.monotonic() >= deadline:
                return False
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Say `offline` (retained), disconnect and stop the network thread."""
        self._closing = True
        if self.connected:
            try:
                self.publish_all([(self.status_topic, OFFLINE)], retain=True, timeout=timeout)
            except MqttError as exc:
                log.warning("could not publish offline status: %s", exc)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()

    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            # Bad user name or password / not authorised, before we ever got in: a config
            # error to report. Later (a password changed under us) paho keeps retrying.
            if reason.value in (0x86, 0x87, 4, 5) and self.connections == 0:
                self._auth_failed = str(reason)
                client.disconnect()
            log.error("broker %s refused the connection: %s", self._where(), reason)
            return
        with self._lock:
            subs = dict(self._subs)
            # The last connection's subscriptions will never be answered now.
            self._early_acks.clear()
            self._unwaited.clear()
        # This runs on paho's thread, which handles the answer only after it returns.
        _, mid = client.subscribe([(f, _options(*how)) for f, how in subs.items()])
        if mid is not None:
            with self._lock:
                self._unwaited.add(mid)
        with self._echo:
            self._online_sent, self._online_heard = 1, 0
        client.publish(self.status_topic, ONLINE, qos=1, retain=True)
        self.connections += 1
        self._connected.set()
        who = self.config.username or "an anonymous client"
        log.info("connected to broker %s as %s", self._where(), who)

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if self.connected and not self._closing:
            log.warning("lost the broker %s (%s); reconnecting", self._where(), reason)
        self._connected.clear()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        payload = bytes(msg.payload)
        if msg.topic == self.status_topic:
            # Our own `online` coming back live (the retained copy has the retain flag).
            if payload == ONLINE and not msg.retain:
                with self._echo:
                    self._online_heard += 1
                    self._echo.notify_all()
            return
        # An exception escaping a paho callback would end the network thread: contain it.
        try:
            self.on_message(Message(msg.topic, payload, bool(msg.retain)))
        except Exception:
            log.exception("could not handle a message on %r", msg.topic)

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, codes: Any, props: Any
    ) -> None:
        for code in codes:
            if getattr(code, "is_failure", False):
                log.warning("broker refused a subscription: %s", code)
        with self._lock:
            event = self._acks.pop(mid, None)
            if mid in self._unwaited:
                self._unwaited.discard(mid)
            elif event is None:  # answered before `_wait_ack` started waiting
                self._early_acks.add(mid)
        if event is not None:
            event.set()

    # -- subscriptions ---------------------------------------------------------------------

    def subscribe(
        self,
        filters: Sequence[str],
        retain_as_published: bool = False,
        timeout: float = 10.0,
        no_local: bool = False,
    ) -> None:
        """Subscribe at QoS 1 (renewed on every reconnect) and wait for the broker's answer.

        `no_local`: the broker does not send back what this link publishes there (MQTT 5); the
        retained messages a subscription reads back still come, whoever published them."""
        if not filters:
            return
        with self._lock:
            for f in filters:
                self._subs[f] = (retain_as_published, no_local)
        opts = _options(retain_as_published, no_local)
        rc, mid = self._client.subscribe([(f, opts) for f in filters])
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            raise MqttUnreachable(f"cannot subscribe: {mqtt.error_string(rc)}")
        self._wait_ack(mid, timeout, "subscription")

    def _wait_ack(self, mid: int, timeout: float, what: str) -> None:
        event = threading.Event()
        with self._lock:
            if mid in self._early_acks:
                self._early_acks.discard(mid)
                return
            self._acks[mid] = event
        if not event.wait(timeout):
            with self._lock:
                if self._acks.pop(mid, None) is not None:
                    self._unwaited.add(mid)  # a late answer is of no use to anyone
            raise MqttTimeout(f"the broker did not acknowledge a {what} in {timeout:g}s")

    def barrier(self, timeout: float = 10.0) -> None:
        """Return once every message delivered before now has been handed to `on_message`.

        The broker sends a subscription's retained messages before anything published after
        the subscription was acknowledged, so our own message coming back marks their end.
        """
        with self._echo:
            self._online_sent += 1
            target = self._online_sent
        self._send(self.status_topic, ONLINE, qos=1, retain=True)
        with self._echo:
            if not self._echo.wait_for(lambda: self._online_heard >= target, timeout):
                raise MqttTimeout(f"the broker did not echo our status in {timeout:g}s")

    # -- publishing ------------------------------------------------------------------------

    def _send(self, topic: str, payload: bytes, qos: int, retain: bool) -> mqtt.MQTTMessageInfo:
        if not self.connected:
            raise MqttUnreachable(f"not connected to the broker {self._where()}")
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, TypeError) as exc:  # bad topic or payload
            raise MqttError(f"cannot publish on {topic!r}: {exc}") from None
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_AGAIN):
            raise MqttUnreachable(f"cannot publish on {topic!r}: {mqtt.error_string(info.rc)}")
        with self._lock:
            self.messages_published += 1
            self.bytes_published += len(payload)
        return info

    def publish(self, topic: str, payload: bytes, retain: bool = False, qos: int = 1) -> None:
        """Send one message without waiting (safe from a message handler)."""
        self._send(topic, payload, qos, retain)

    def publish_all(
        self,
        messages: Sequence[tuple[str, bytes]],
        retain: bool,
        qos: int = 1,
        timeout: float = 10.0,
    ) -> int:
        """Publish in order and wait until the broker acknowledged every one (QoS 1).

        Returns how many were acknowledged. Raises MqttError when one could not be sent or was
        not acknowledged within `timeout`; the ones before it may have arrived.
        """
        infos = [self._send(topic, payload, qos, retain) for topic, payload in messages]
        deadline = time.monotonic() + timeout
        for done, info in enumerate(infos):
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                published = info.is_published()
            except (RuntimeError, ValueError) as exc:
                raise MqttUnreachable(f"publish failed: {exc}") from None
            if not published:
                raise MqttTimeout(
                    f"the broker acknowledged {done} of {len(infos)} messages in {timeout:g}s"
                )
        return len(infos)


def _options(retain_as_published: bool, no_local: bool = False) -> SubscribeOptions:
    return SubscribeOptions(qos=1, noLocal=no_local, retainAsPublished=retain_as_published)

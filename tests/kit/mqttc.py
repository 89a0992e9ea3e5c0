"""Small paho helpers for tests: connect as a role, collect retained messages, publish and wait."""

from __future__ import annotations

import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.kit.broker import Mosquitto


class Collector:
    """A connected paho client that records every message it receives."""

    def __init__(
        self,
        broker: Mosquitto,
        user: str,
        password: str | None = None,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    ) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{user}-{id(self)}", protocol=protocol
        )
        # An alias of the role (same rights): the broker binds client ids to user names.
        login = broker.alias(user) if password is None else user
        self.client.username_pw_set(login, broker.users[user] if password is None else password)
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.reason: Any = None
        self.client.on_connect = self._on_connect
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        broker.clients.append(self)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any
    ) -> None:
        self.reason = rc
        self.connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def wait_connected(self, timeout: float = 5.0) -> bool:
        return self.connected.wait(timeout) and not self.reason.is_failure

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = threading.Event()
        self.client.on_subscribe = lambda *a: done.set()
        self.client.subscribe(topic, qos)
        done.wait(5)

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if predicate(self.messages):
                    return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        # Disconnect first: loop_stop() on a connected client waits out a full loop second.
        self.client.disconnect()
        self.client.loop_stop()


def publish(
    broker: Mosquitto, user: str, topic: str, payload: bytes | str, retain: bool = False
) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{user}-{time.monotonic_ns()}")
    c.username_pw_set(broker.alias(user), broker.users[user])
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()

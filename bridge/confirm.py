"""`python -m bridge confirm-removal FRAME|all`: release a held mass removal from the command line.
Does I/O: one short MQTT connection.

It publishes the MQTT command `<base>/bridge/cmd/confirm_removal` (what Home Assistant's button
sends) as Home Assistant's user when `mqtt.homeassistant_password` is set, else as the bridge's
own user, and waits for the running bridge's retained state (`<base>/bridge/state`) to show the
frame no longer held. Exit status 0 when it does, 1 when no bridge answered in time.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt

from common import mqttclient, topics
from common.config import Config

WAIT = 15.0


def _released(payload: bytes, which: str) -> bool:
    try:
        doc = json.loads(payload.decode())
        frames = doc["frames"]
        rows = frames.values() if which == "all" else [frames[which]]
        return all(row.get("held_removals") == 0 for row in rows)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return False


def confirm_removal(config: Config, which: str, wait: float = WAIT) -> int:
    """Publish the command and wait for the bridge to release the hold; an exit status."""
    frames = [f.id for f in config.frames]
    if which != "all" and which not in frames:
        print(f"error: no frame {which!r} in the config (frames: {', '.join(frames)}, or all)",
              file=sys.stderr)  # fmt: skip
        return 2
    mq = config.mqtt
    user, password = mq.username, mq.password
    if mq.homeassistant_password is not None:
        user, password = "homeassistant", mq.homeassistant_password
    base = mq.base_topic
    client = mqttclient.make_client(mq, mqttclient.client_id("confirm"), user, password)
    subscribed, released = threading.Event(), threading.Event()
    sent = threading.Event()

    def on_connect(c: mqtt.Client, *_: Any) -> None:
        c.subscribe(topics.bridge_state(base), qos=1)

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if sent.is_set() and _released(bytes(msg.payload), which):
            released.set()

    client.on_connect = on_connect
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = on_message
    try:
        client.connect(mq.host, mq.port, mqttclient.KEEPALIVE)
    except OSError as exc:
        print(f"error: cannot reach the MQTT broker {mq.host}:{mq.port}: {exc}", file=sys.stderr)
        return 1
    client.loop_start()
    try:
        if not subscribed.wait(wait):
            print("error: the MQTT broker did not let this user in", file=sys.stderr)
            return 1
        sent.set()
        info = client.publish(topics.bridge_cmd(base, "confirm_removal"), which, qos=1)
        info.wait_for_publish(wait)
        deadline = time.monotonic() + wait
        if released.wait(max(0.0, deadline - time.monotonic())):
            print(f"confirmed: the bridge publishes the held removal of {which} now")
            return 0
        print(
            f"sent; the bridge has not shown {which} released within {wait:g}s (is it running? "
            "`confirm-removal` acts only on a removal held now)",
            file=sys.stderr,
        )
        return 1
    finally:
        client.disconnect()
        client.loop_stop()

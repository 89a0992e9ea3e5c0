"""`python -m bridge confirm-removal FRAME|all`: release a held mass removal from the command line.
Does I/O: one short MQTT connection.

It publishes the MQTT command `<base>/bridge/cmd/confirm_removal` (what Home Assistant's button
sends) as Home Assistant's user (`mqtt.homeassistant_password`), and waits for the running
bridge's retained state (`<base>/bridge/state`) to show the frame no longer held. Not as the
bridge's own user: the broker binds client ids to user names, so that login would replace the
running bridge's connection. Exit status 0 when the bridge shows the frame released (or nothing
was held), 1 when no bridge answered in time, 2 for a config problem.
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
RETAINED_WAIT = 2.0


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
    if mq.homeassistant_password is None:
        print(
            "error: mqtt.homeassistant_password: confirm-removal logs in as Home Assistant's "
            "user (the bridge's own login is the running bridge's), got None",
            file=sys.stderr,
        )
        return 2
    base = mq.base_topic
    client = mqttclient.make_client(
        mq, mqttclient.client_id("confirm"), "homeassistant", mq.homeassistant_password
    )
    subscribed, released = threading.Event(), threading.Event()
    sent, got = threading.Event(), threading.Event()
    before: list[bytes] = []  # the retained state, as it was before the command

    def on_connect(c: mqtt.Client, *_: Any) -> None:
        c.subscribe(topics.bridge_state(base), qos=1)

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        if not sent.is_set():
            before.append(bytes(msg.payload))
            got.set()
        elif _released(bytes(msg.payload), which):
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
        got.wait(RETAINED_WAIT)  # the retained state follows the SUBACK, if there is one
        if before and _released(before[-1], which):
            print(f"no removal of {which} is held now; nothing to confirm")
            return 0
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

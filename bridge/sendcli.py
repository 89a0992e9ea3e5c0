"""`python -m bridge --config FILE send FRAME ASSET_ID`: send an Immich photo to a frame from a
shell. Does network I/O (MQTT).

It publishes `<base>/<frame>/cmd/show` with the photo's id, as Home Assistant or
`mosquitto_pub` would, then waits for the answer on the frame's event topic: the running
bridge's `sent` (the photo is now a guest of the frame) or `error`, or the frame's `shown` (the
photo was in the frame's pictures already). It logs in as Home Assistant's user
(`mqtt.homeassistant_password`), as `confirm-removal` does: the broker binds client ids to
user names, so the bridge's own login would replace the running bridge's connection. Exit 0
when it went through, 1 otherwise, 2 for a config problem.
"""

from __future__ import annotations

import json
import queue
import re
from typing import Any

import paho.mqtt.client as mqtt

from common import topics
from common.config import Config
from common.mqttclient import client_id, make_client

ASSET_ID_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
WAIT = 15.0  # seconds for the bridge's answer


def answer(asset_id: str, payload: bytes) -> tuple[bool, str] | None:
    """(went through, what to print) for an event about `asset_id`; None for other events."""
    try:
        doc = json.loads(payload.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    kind = doc.get("event")
    if kind == "sent" and doc.get("picture") == asset_id:
        return True, f"sent {asset_id}: on the frame until {doc.get('until')} (unix time)"
    if kind == "shown" and doc.get("picture") == asset_id:
        return True, f"{asset_id} is on the frame's screen"
    if kind == "error" and asset_id in str(doc.get("detail", "")):
        return False, f"not sent: {doc.get('code')}: {doc.get('detail')}"
    return None


def send(config: Config, frame_id: str, asset_id: str, wait: float = WAIT) -> tuple[int, str]:
    """(exit status, message) after publishing the show command and waiting for its answer."""
    asset_id = asset_id.strip().lower()
    if config.frame(frame_id) is None:
        known = ", ".join(f.id for f in config.frames)
        return 2, f"frame {frame_id!r} is not in the config (frames: {known})"
    if not ASSET_ID_RE.match(asset_id):
        return 2, f"{asset_id!r} is not an Immich asset id (a UUID)"
    base, m = config.mqtt.base_topic, config.mqtt
    if m.homeassistant_password is None:
        return 2, (
            "mqtt.homeassistant_password: send logs in as Home Assistant's user (the bridge's "
            "own login is the running bridge's), got None"
        )
    got: queue.Queue[tuple[bool, str]] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    client = make_client(m, client_id("send"), "homeassistant", m.homeassistant_password)

    def on_message(c: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        found = answer(asset_id, bytes(msg.payload))
        if found is not None:
            got.put(found)

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.put(True)
    try:
        client.connect(m.host, m.port, keepalive=30)
    except OSError as exc:
        return 1, f"no connection to the MQTT broker {m.host}:{m.port}: {exc}"
    client.loop_start()
    try:
        client.subscribe(topics.event(base, frame_id), qos=1)
        subscribed.get(timeout=wait)
        info = client.publish(topics.cmd(base, frame_id, "show"), asset_id.encode(), qos=1)
        info.wait_for_publish(wait)
        ok, text = got.get(timeout=wait)
    except (queue.Empty, RuntimeError, ValueError):
        return 1, f"sent the command, but no answer within {wait:g}s: is the bridge running?"
    finally:
        client.disconnect()
        client.loop_stop()
    return (0 if ok else 1), text

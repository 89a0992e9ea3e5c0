"""The frame's MQTT client on a command flood (real Mosquitto, CPython sockets): a keepalive ping
that falls due does not hold the loop until its answer, which the broker sends only after every
message queued before it; the answer, arriving while a subscribe waits for its SUBACK, is no
error; and the last command, at QoS 1, arrives on the same session."""

from __future__ import annotations

import socket

from adafruit_ticks import ticks_add, ticks_diff, ticks_ms

from tests.kit import vmkit
from tests.kit.broker import USERS, Mosquitto
from tests.kit.mqttc import Collector
from titano_app.frame.client import Client

BASE = "titanoframe/kitchen/"
FLOOD = 3000


def test_a_ping_due_in_a_flood_neither_waits_for_its_answer_nor_breaks_a_subscribe(
    broker: Mosquitto,
) -> None:
    got: list[bytes] = []
    client = Client(
        broker=broker.host, port=broker.port, username="kitchen", password=USERS["kitchen"],
        client_id="kitchen", socket_pool=socket, use_binary_mode=True, socket_timeout=0.01,
        recv_timeout=4, connect_retries=1, keep_alive=30,
    )  # fmt: skip
    client.on_message = lambda _c, _t, payload: got.append(bytes(payload))
    client.connect()
    client.subscribe(BASE + "cmd/brightness", 1)
    sender = Collector(broker, "homeassistant")
    assert sender.wait_connected()
    for i in range(FLOOD):
        sender.client.publish(BASE + "cmd/brightness", str(i % 101), qos=0)
    sender.client.publish(BASE + "cmd/brightness", "40", qos=1).wait_for_publish(5)
    # the keepalive is due (30 s since the last packet sent): the only time the test moves
    client._last_msg_sent_timestamp = ticks_add(ticks_ms(), -31_000)

    client.loop(0.01)  # sends the ping, reads a little of the flood and returns
    assert ticks_diff(ticks_ms(), client._last_msg_sent_timestamp) < 30_000  # the ping went
    assert len(got) < FLOOD + 1  # and its answer, behind the flood, was not waited for
    client.subscribe(BASE + "manifest/all", 1)  # its SUBACK comes after the ping's answer

    def last_arrived() -> bool:
        client.loop(0.01)
        return got[-1:] == [b"40"]

    assert vmkit.wait_until(last_arrived, 60)
    assert client._pinged is None and client.is_connected()
    assert len(got) == FLOOD + 1
    client.disconnect()

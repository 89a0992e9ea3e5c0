"""The paho client both daemons start from. No I/O: the caller connects it.

Both speak to the broker the same way: callback API 2, a client id naming the program and the
process (`titanoframe-<program>-<pid>-<random>`; the project's broker replaces it with the user
name, `use_username_as_clientid`, so it only matters on a broker without that), a user
name and password, TLS with the configured CA when `mqtt.tls` is on, paho's own reconnects backing
off from 1 s to 30 s, and a 30 s keep-alive. What they subscribe to, and the bridge's last will,
stay with each program.
"""

from __future__ import annotations

import os
import secrets

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from common.configmodel import MqttConfig

KEEPALIVE = 30


def client_id(program: str) -> str:
    """A client id unique to this process: `titanoframe-<program>-<pid>-<6 hex digits>`."""
    return f"titanoframe-{program}-{os.getpid()}-{secrets.token_hex(3)}"


def make_client(
    config: MqttConfig,
    client_id: str,
    username: str | None,
    password: str | None,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
) -> mqtt.Client:
    """A paho client with login, TLS and reconnect back-off set; callbacks are the caller's."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
    if username is not None:  # None: connect anonymously, for a broker that allows it
        client.username_pw_set(username, password)
    if config.tls:
        client.tls_set(ca_certs=config.ca_file)
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    return client

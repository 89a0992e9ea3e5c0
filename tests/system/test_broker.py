"""The Mosquitto fixture runs the project's own broker_config/ and behaves like production."""

from __future__ import annotations

import socket

from tests.kit.broker import CONFIG, Mosquitto, free_port
from tests.kit.mqttc import Collector, publish


def test_fixture_uses_project_config(broker: Mosquitto) -> None:
    effective = broker.conf_path.read_text().splitlines()
    for line in CONFIG.read_text().splitlines():
        if line.startswith(("persistence ", "allow_anonymous", "message_size_limit")):
            assert line in effective
    assert f"listener {broker.port} 127.0.0.1" in effective


def test_anonymous_refused(broker: Mosquitto) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    results = []
    c.on_connect = lambda cl, u, f, rc, p: results.append(rc)
    c.connect(broker.host, broker.port)
    c.loop_start()
    import time

    deadline = time.monotonic() + 5
    while not results and time.monotonic() < deadline:
        time.sleep(0.02)
    c.loop_stop()
    assert results and results[0].is_failure


def test_retained_survives_restart(broker: Mosquitto) -> None:
    publish(broker, "bridge", "titanoframe/kitchen/manifest", b'{"v": 1}', retain=True)
    broker.restart()
    c = Collector(broker, "bridge")
    assert c.wait_connected()
    c.subscribe("titanoframe/kitchen/manifest")
    assert c.wait_for(lambda m: ("titanoframe/kitchen/manifest", b'{"v": 1}', True) in m)
    c.close()


def test_free_ports_lie_below_the_kernels_ephemeral_range() -> None:
    """Ports the kernel hands out to outgoing connections never collide with the ones the
    tests and the demo choose for their servers (a renderer once found its port taken)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    ports = [free_port() for _ in range(20)]
    assert all(1024 <= p < low for p in ports)
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # free when chosen

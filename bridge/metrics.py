"""The bridge's Prometheus metrics and health endpoint. Does I/O: a small threaded HTTP server.

`GET /metrics` serves text format 0.0.4, `GET /healthz` a JSON summary (200 while the bridge
is connected to the broker, 503 otherwise). Values are updated from the service loop and the
MQTT thread, so every change holds one lock.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bridge.configmodel import split_listen

log = logging.getLogger(__name__)

PREFIX = "titanoframe_bridge_"
Labels = tuple[tuple[str, str], ...]

HELP = {
    "polls_total": ("counter", "Polls of the sources, by kind (full walk or delta)."),
    "poll_errors_total": ("counter", "Polls that failed and changed nothing, by reason."),
    "immich_requests_total": ("counter", "HTTP requests made to Immich."),
    "immich_bytes_total": ("counter", "Response bytes received from Immich."),
    "immich_errors_total": ("counter", "Failed Immich requests, by reason."),
    "frame_assets": ("gauge", "Photos each frame should show."),
    "frame_pictures": ("gauge", "Pictures in each frame's manifest (a pair counts once)."),
    "dropped_pictures": ("gauge", "Pictures left out of a frame's manifest for lack of room."),
    "held_removals": ("gauge", "Photos a held mass removal would take from a frame."),
    "manifest_publishes_total": ("counter", "Manifest updates published, by frame."),
    "mqtt_publishes_total": ("counter", "MQTT messages published by the bridge."),
    "mqtt_bytes_total": ("counter", "MQTT payload bytes published by the bridge."),
    "mqtt_errors_total": ("counter", "Publishes that failed or were not acknowledged."),
    "mqtt_connected": ("gauge", "1 while connected to the broker."),
    "schedule_commands_total": ("counter", "Scheduled commands sent, by frame."),
    "retained_commands_cleared_total": ("counter", "Retained cmd/ messages cleared."),
    "picture_publishes_total": ("counter", "Picture-topic updates published, by frame."),
    "last_poll_timestamp_seconds": ("gauge", "Unix time of the last successful poll."),
}

# Series without labels.
SCALARS = frozenset(
    {
        "immich_requests_total",
        "immich_bytes_total",
        "mqtt_publishes_total",
        "mqtt_bytes_total",
        "mqtt_errors_total",
        "mqtt_connected",
        "retained_commands_cleared_total",
    }
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _series(name: str, labels: Labels) -> str:
    if not labels:
        return PREFIX + name
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return f"{PREFIX}{name}{{{inner}}}"


def _number(value: float) -> str:
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


class Metrics:
    """Named values with labels; `exposition()` renders them all."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, Labels], float] = {}

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] = value

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get((name, tuple(sorted(labels.items()))), 0)

    def exposition(self) -> str:
        with self._lock:
            values = dict(self._values)
        lines: list[str] = []
        for name, (kind, text) in HELP.items():
            series = sorted((labels, v) for (n, labels), v in values.items() if n == name)
            if not series and name in SCALARS:
                series = [((), 0.0)]  # shown from the start, so dashboards find them at once
            elif not series:
                continue
            lines += [f"# HELP {PREFIX}{name} {text}", f"# TYPE {PREFIX}{name} {kind}"]
            lines += [f"{_series(name, labels)} {_number(v)}" for labels, v in series]
        return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    server: MetricsServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body = self.server.metrics.exposition().encode()
            self._send(200, body, "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/healthz":
            doc = self.server.health()
            status = 200 if doc.get("status") == "ok" else 503
            self._send(status, json.dumps(doc).encode(), "application/json")
        else:
            self._send(404, b'{"error":"not_found"}', "application/json")

    def _send(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class MetricsServer(ThreadingHTTPServer):
    """`/metrics` and `/healthz` on `listen` (`host:port`, port 0 picks a free one)."""

    daemon_threads = True

    def __init__(self, listen: str, metrics: Metrics, health: Callable[[], dict[str, Any]]) -> None:
        host, port = split_listen(listen) if not listen.endswith(":0") else (listen[:-2], 0)
        self.metrics = metrics
        self.health = health
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics", self.server_address[0], self.port)

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

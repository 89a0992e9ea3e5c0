"""The bridge's Prometheus metrics and health endpoint. Does I/O: a small threaded HTTP server.

`GET /metrics` serves text format 0.0.4, `GET /healthz` a JSON summary (200 while the bridge
is connected to the broker and Immich accepts its key, 503 with a `reason` otherwise). Values
are updated from the service loop and the MQTT thread, so every change holds one lock.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from common.configmodel import split_listen
from common.prometheus import Registry

log = logging.getLogger(__name__)

PREFIX = "titanoframe_bridge_"

HELP = {
    "polls_total": ("counter", "Polls of the sources, by kind (full walk or delta)."),
    "poll_errors_total": ("counter", "Polls that failed and changed nothing, by reason."),
    "immich_requests_total": ("counter", "HTTP requests made to Immich."),
    "immich_bytes_total": ("counter", "Response bytes received from Immich."),
    "immich_errors_total": ("counter", "Failed Immich requests, by reason."),
    "immich_up": ("gauge", "1 while polls of Immich work, 0 from a failed one to a good one."),
    "immich_outages_total": ("counter", "Runs of failed polls (Immich down or failing)."),
    "immich_outage_seconds_total": (
        "counter",
        "Seconds from each run's first failed poll to the next good one.",
    ),
    "frame_assets": ("gauge", "Photos each frame should show."),
    "frame_pictures": ("gauge", "Pictures in each frame's manifest (a pair counts once)."),
    "dropped_pictures": ("gauge", "Pictures left out of a frame's manifest for lack of room."),
    "held_removals": ("gauge", "Photos a held mass removal would take from a frame."),
    "held_removal_since_seconds": ("gauge", "Unix time a frame's held removal was first seen."),
    "held_removal_until_seconds": (
        "gauge",
        "Unix time a frame's held removal may go out by itself (after a full walk too).",
    ),
    "removals_confirmed_total": ("counter", "Held removals released by a person, by frame."),
    "frame_boards": ("gauge", "Boards (distinct boot ids) seen using a frame id lately."),
    "manifest_publishes_total": ("counter", "Manifest updates published, by frame."),
    "mqtt_publishes_total": ("counter", "MQTT messages published by the bridge."),
    "mqtt_bytes_total": ("counter", "MQTT payload bytes published by the bridge."),
    "mqtt_errors_total": ("counter", "Publishes that failed or were not acknowledged."),
    "mqtt_connected": ("gauge", "1 while connected to the broker."),
    "schedule_commands_total": ("counter", "Scheduled commands sent, by frame."),
    "retained_commands_cleared_total": ("counter", "Retained cmd/ messages cleared."),
    "picture_publishes_total": ("counter", "Picture-topic updates published, by frame."),
    "last_poll_timestamp_seconds": ("gauge", "Unix time of the last successful poll."),
    "loop_errors_total": ("counter", "Unexpected errors in the bridge loop, logged and survived."),
    "frame_requests_total": (
        "counter",
        "Likes, hides and sends, by frame, action and result (ok or the error code).",
    ),
    "frame_guests": ("gauge", "Photos sent to each frame that are still in its slideshow."),
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
        "loop_errors_total",
        "immich_up",
        "immich_outages_total",
        "immich_outage_seconds_total",
    }
)


class Metrics(Registry):
    """The bridge's metrics; `exposition()` renders them all."""

    def __init__(self) -> None:
        super().__init__(PREFIX, HELP, SCALARS)


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

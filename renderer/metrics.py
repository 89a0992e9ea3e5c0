"""Prometheus metrics of the renderer: counters, gauges and one histogram, in text format 0.0.4.

No I/O: the service updates values and `Metrics.exposition()` returns the text `/metrics`
serves (`common.prometheus`, shared with the bridge).
"""

from __future__ import annotations

from common.prometheus import Registry

PREFIX = "titanoframe_renderer_"

# Render times on two small cores: a cached-miss render is tens to hundreds of milliseconds.
RENDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_HELP = {
    "requests_total": ("counter", "HTTP responses by route and status code."),
    "render_seconds": ("histogram", "Time to fetch and render one picture on a cache miss."),
    "cache_hits_total": ("counter", "Picture requests answered from the disk cache."),
    "cache_misses_total": ("counter", "Picture requests that needed a render."),
    "cache_bytes": ("gauge", "Bytes held in the disk cache."),
    "cache_files": ("gauge", "Files held in the disk cache."),
    "cache_evictions_total": ("counter", "Files removed from the cache to stay under its limit."),
    "cache_served_bytes_total": ("counter", "Picture bytes sent from the disk cache."),
    "upstream_errors_total": ("counter", "Failures fetching pictures, by kind."),
    "render_errors_total": ("counter", "Pictures whose bytes could not be rendered."),
    "prerenders_total": ("counter", "Pictures rendered ahead of any request."),
    "prerender_queue": ("gauge", "Pictures waiting to be pre-rendered."),
    "manifest_pictures": ("gauge", "Pictures in each frame's current manifest."),
    "manifest_rejected_total": ("counter", "Malformed manifest messages ignored."),
    "broker_connected": ("gauge", "1 while connected to the MQTT broker."),
    "connections_open": ("gauge", "HTTP connections open now."),
    "connections_shed_total": ("counter", "Idle connections closed to stay at the bound."),
    "connections_refused_total": ("counter", "Connections answered 503: all others were busy."),
    "accept_errors_total": ("counter", "Connections not accepted for want of open files."),
    "malformed_requests_total": ("counter", "Requests answered 400 by the HTTP parser."),
    "casts_total": ("counter", "Images cast to frames and announced, by frame."),
    "casts_refused_total": ("counter", "Cast uploads refused, by error code."),
}

# Series without labels, shown as 0 before their first update so dashboards see them at once.
_SCALARS = frozenset(
    {
        "cache_hits_total",
        "cache_misses_total",
        "cache_bytes",
        "cache_files",
        "cache_evictions_total",
        "cache_served_bytes_total",
        "render_errors_total",
        "prerenders_total",
        "prerender_queue",
        "manifest_rejected_total",
        "broker_connected",
        "connections_open",
        "connections_shed_total",
        "connections_refused_total",
        "accept_errors_total",
        "malformed_requests_total",
    }
)


class Metrics(Registry):
    """All the renderer's metrics, keyed by short name (without PREFIX) and label pairs."""

    def __init__(self) -> None:
        super().__init__(PREFIX, _HELP, _SCALARS, {"render_seconds": RENDER_BUCKETS})

"""Prometheus metrics of the renderer: counters, gauges and one histogram, in text format 0.0.4.

Written by hand to keep the service's dependencies to what it already needs. No I/O: the
service updates values and `Metrics.exposition()` returns the text `/metrics` serves. Updates
come from the event loop and from the MQTT thread, so every change holds one lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable

PREFIX = "titanoframe_renderer_"

# Render times on two small cores: a cached-miss render is tens to hundreds of milliseconds.
RENDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

Labels = tuple[tuple[str, str], ...]

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
    }
)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels_text(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


class Metrics:
    """All the renderer's metrics, keyed by short name (without PREFIX) and label pairs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, Labels], float] = {}
        self._hist: dict[str, tuple[list[int], list[float]]] = {
            "render_seconds": ([0] * (len(RENDER_BUCKETS) + 1), [0.0])
        }

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] = value

    def observe(self, name: str, seconds: float) -> None:
        counts, total = self._hist[name]
        with self._lock:
            for i, bound in enumerate(RENDER_BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            total[0] += seconds

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get((name, tuple(sorted(labels.items()))), 0.0)

    def exposition(self) -> str:
        with self._lock:
            values = dict(self._values)
            hist = {k: (list(c), t[0]) for k, (c, t) in self._hist.items()}
        lines: list[str] = []
        for name, (kind, text) in _HELP.items():
            lines += [f"# HELP {PREFIX}{name} {text}", f"# TYPE {PREFIX}{name} {kind}"]
            if kind == "histogram":
                lines += self._histogram_lines(name, *hist[name])
                continue
            series = sorted((k[1], v) for k, v in values.items() if k[0] == name)
            if not series and name in _SCALARS:
                series = [((), 0.0)]
            lines += [f"{PREFIX}{name}{_labels_text(lb)} {_number(v)}" for lb, v in series]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _histogram_lines(name: str, counts: list[int], total: float) -> Iterable[str]:
        running = 0
        for bound, count in zip((*RENDER_BUCKETS, math.inf), counts, strict=True):
            running += count
            yield f'{PREFIX}{name}_bucket{{le="{_number(bound)}"}} {running}'
        yield f"{PREFIX}{name}_sum {_number(total)}"
        yield f"{PREFIX}{name}_count {running}"

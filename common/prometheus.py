"""Prometheus text exposition (format 0.0.4) for both daemons: counters, gauges, histograms.

Pure, no I/O: a daemon updates values and serves `Registry.exposition()` on `/metrics`. Written
by hand so neither service needs another dependency. Values may change from several threads,
so every change holds one lock.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping

Labels = tuple[tuple[str, str], ...]


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


class Registry:
    """Named values with labels, keyed by short name (without `prefix`).

    `families` maps each name to (type, help text), in the order they are shown; `scalars` are
    unlabelled series shown as 0 before their first update, so dashboards find them at once;
    `buckets` gives each histogram its upper bounds.
    """

    def __init__(
        self,
        prefix: str,
        families: Mapping[str, tuple[str, str]],
        scalars: Iterable[str] = (),
        buckets: Mapping[str, tuple[float, ...]] | None = None,
    ) -> None:
        self.prefix = prefix
        self.families = dict(families)
        self.scalars = frozenset(scalars)
        self.buckets = dict(buckets or {})
        self._lock = threading.Lock()
        self._values: dict[tuple[str, Labels], float] = {}
        self._hist = {name: ([0] * (len(b) + 1), [0.0]) for name, b in self.buckets.items()}

    def inc(self, name: str, amount: float = 1, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        with self._lock:
            self._values[(name, tuple(sorted(labels.items())))] = value

    def total(self, name: str) -> float:
        """The sum of a metric over all its labels."""
        with self._lock:
            return sum(v for (n, _), v in self._values.items() if n == name)

    def get(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._values.get((name, tuple(sorted(labels.items()))), 0)

    def observe(self, name: str, value: float) -> None:
        counts, total = self._hist[name]
        with self._lock:
            for i, bound in enumerate(self.buckets[name]):
                if value <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            total[0] += value

    def exposition(self) -> str:
        with self._lock:
            values = dict(self._values)
            hist = {k: (list(c), t[0]) for k, (c, t) in self._hist.items()}
        lines: list[str] = []
        for name, (kind, text) in self.families.items():
            full = self.prefix + name
            lines += [f"# HELP {full} {text}", f"# TYPE {full} {kind}"]
            if kind == "histogram":
                lines += self._histogram_lines(name, *hist[name])
                continue
            series = sorted((k[1], v) for k, v in values.items() if k[0] == name)
            if not series and name in self.scalars:
                series = [((), 0.0)]
            lines += [f"{full}{_labels_text(lb)} {_number(v)}" for lb, v in series]
        return "\n".join(lines) + "\n"

    def _histogram_lines(self, name: str, counts: list[int], total: float) -> Iterable[str]:
        full, running = self.prefix + name, 0
        for bound, count in zip((*self.buckets[name], math.inf), counts, strict=True):
            running += count
            yield f'{full}_bucket{{le="{_number(bound)}"}} {running}'
        yield f"{full}_sum {_number(total)}"
        yield f"{full}_count {running}"

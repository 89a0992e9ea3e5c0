"""Both daemons' /metrics text: every metric the code updates is declared, and the shared
exposition renders counters, labels and histograms as Prometheus reads them."""

from __future__ import annotations

import re

import pytest

from bridge import metrics as bridge_metrics
from common.prometheus import Registry
from renderer import metrics as renderer_metrics
from tests.kit import ROOT

UPDATE = re.compile(r'metrics\.(?:inc|set|observe)\(\s*"([a-z_]+)"')


@pytest.mark.parametrize(
    "package,families",
    [("bridge", bridge_metrics.HELP), ("renderer", renderer_metrics._HELP)],
)
def test_every_metric_the_code_updates_is_declared(
    package: str, families: dict[str, object]
) -> None:
    used = {name for f in (ROOT / package).glob("*.py") for name in UPDATE.findall(f.read_text())}
    assert used and used <= set(families), sorted(used - set(families))


def test_exposition_of_counters_labels_and_histograms() -> None:
    reg = Registry(
        "t_",
        {"hits_total": ("counter", "Hits."), "by_kind": ("gauge", "Kinds."),
         "secs": ("histogram", "Times.")},
        scalars=["hits_total"],
        buckets={"secs": (0.1, 1.0)},
    )  # fmt: skip
    assert "t_hits_total 0\n" in reg.exposition()  # a scalar shows before its first update
    reg.inc("hits_total", 2)
    reg.set("by_kind", 1.5, kind='a "b"\n')
    for value in (0.05, 0.5, 5.0):
        reg.observe("secs", value)
    text = reg.exposition()
    assert "# TYPE t_hits_total counter\nt_hits_total 2\n" in text
    assert 't_by_kind{kind="a \\"b\\"\\n"} 1.5\n' in text
    assert (
        't_secs_bucket{le="0.1"} 1\nt_secs_bucket{le="1"} 2\nt_secs_bucket{le="+Inf"} 3\n' in text
    )
    assert "t_secs_sum 5.55\nt_secs_count 3\n" in text
    assert reg.get("by_kind", kind='a "b"\n') == 1.5

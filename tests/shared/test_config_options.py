"""Config options that follow Immich and the broker as they really behave: stacks per source."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import Config, ConfigError, Source, load_config, redacted

IMMICH = "immich: {url: http://immich.test, api_key: k3y-value}\n"


def _load(tmp_path: Path, text: str) -> tuple[Config | None, list[str]]:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    try:
        return load_config(path, {}), []
    except ConfigError as exc:
        return None, exc.errors


def test_a_source_may_show_every_member_of_a_stack(tmp_path: Path) -> None:
    text = IMMICH + "frames:\n  den:\n    sources: [{album: Bursts, stacks: all}, {tag: x}]\n"
    config, errors = _load(tmp_path, text)
    assert errors == [] and config is not None
    assert config.frames[0].sources == (
        Source("album", "Bursts", stacks="all"),
        Source("tag", "x", stacks="primary"),
    )
    dumped = redacted(config)["frames"]["den"]["sources"]
    assert dumped == [{"album": "Bursts", "stacks": "all"}, {"tag": "x"}]


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{album: B, stacks: some}", "frames.den.sources[0].stacks: expected one of primary|all"),
        ("{folder: ., stacks: all}", "frames.den.sources[0].stacks: a folder has no stacks"),
        ("{stacks: all}", "frames.den.sources[0]: expected one source key"),
    ],
)
def test_a_wrong_stacks_option_is_named(tmp_path: Path, source: str, error: str) -> None:
    _, errors = _load(tmp_path, IMMICH + f"frames:\n  den:\n    sources: [{source}]\n")
    assert len(errors) == 1 and errors[0].startswith(error), errors

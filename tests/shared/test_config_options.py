"""Config options that follow Immich and the broker as they really behave (stacks per source,
anonymous MQTT clients), and the effective config logged redacted by key."""

from __future__ import annotations

import logging
import types
from pathlib import Path

import pytest

from bridge import cli
from common import logsetup, mqttclient
from common.config import Config, ConfigError, Source, load_config, redacted

IMMICH = "immich: {url: http://immich.test, api_key: k3y-value}\n"
FOLDER = "frames:\n  den:\n    sources: [{folder: .}]\n"


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


def test_mqtt_username_null_is_an_anonymous_client(tmp_path: Path) -> None:
    config, errors = _load(tmp_path, "mqtt: {username: null, password: null}\n" + FOLDER)
    assert errors == [] and config is not None and config.mqtt.username is None
    client = mqttclient.make_client(config.mqtt, "titanoframe-test", None, None)
    assert client.username is None and client.password is None
    named = mqttclient.make_client(config.mqtt, "titanoframe-test", "bridge", "pw")
    assert named.username == "bridge"


def test_the_effective_config_log_is_redacted_by_key_not_by_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "renderer: {url_key: k}\nframes:\n  kitchen:\n    sources: [{folder: .}]\n"
    config, errors = _load(tmp_path, text)
    assert errors == [] and config is not None
    service = types.SimpleNamespace(main=lambda config: 0)
    monkeypatch.setattr("bridge.cli.importlib.import_module", lambda name: service)
    assert cli._run(config, "INFO") == 0
    logging.getLogger("bridge.test").info("signed with k, for the kitchen")
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logsetup._Handler)]:
        root.removeHandler(handler)  # it writes to this test's captured stderr
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert '"kitchen":{' in lines[0] and '"url_key":"***"' in lines[0]
    assert lines[1].endswith("signed with ***, for the kitchen")


def test_a_short_secret_is_masked_as_a_word_a_long_one_anywhere() -> None:
    masking = logsetup.SecretFilter(["k", "frame", "s3cr3t-long-value"])
    assert masking.mask("k; kitchen frame-skip frames") == "***; kitchen ***-skip frames"
    assert masking.mask("url?token=xs3cr3t-long-valuey") == "url?token=x***y"

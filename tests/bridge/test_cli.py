"""`python -m bridge`: config checking and printing, broker users, the run command, logging."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import stat
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bridge import sendcli
from bridge.cli import main
from common import brokerauth
from common.config import Config, load_config, redacted
from common.logsetup import SecretFilter, setup_logging
from tests.kit import ROOT
from tests.kit.broker import Mosquitto
from tests.kit.mqttc import Collector, publish

SECRETS = {
    "IMMICH_API_KEY": "immich-key-Qa71mZp",
    "MQTT_PASSWORD": "mqtt-pw-Rt38vWc",
    "RENDER_URL_KEY": "url-key-Ke52hUd",
    "KITCHEN_SECRET": "kitchen-secret-Bn90yXs",
    "HALL_SECRET": "hall-secret-Gf46tLq",
}

USERS_CONFIG = """\
mqtt: {password: "${MQTT_PASSWORD}"}
renderer: {mqtt_password: renderer-pw-Wd13oPe}
frames:
  kitchen: {secret: "${KITCHEN_SECRET}", sources: [{folder: .}]}
  hall: {secret: "${HALL_SECRET}", sources: [{folder: .}]}
"""


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(ROOT / "config.example.yaml", tmp_path / "config.yaml")
    (tmp_path / "photos").mkdir()
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    return tmp_path / "config.yaml"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_bridge(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **SECRETS, "PYTHONPATH": str(ROOT)}
    env.pop("TITANOFRAME_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_no_secret(text: str) -> None:
    for value in SECRETS.values():
        assert value not in text


# --- check-config / print-config --------------------------------------------------------------


def test_check_config_prints_the_redacted_config(example: Path) -> None:
    done = run_bridge(example.parent, "--config", str(example), "check-config")
    assert done.returncode == 0, done.stderr
    first, _, dump = done.stdout.partition("\n")
    assert first == "config OK: 2 frames"
    assert yaml.safe_load(dump) == redacted(load_config(example))
    assert_no_secret(done.stdout + done.stderr)


def test_bad_config_exits_2_listing_every_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"""\
immich: {{url: "immich:2283", api_key: ["{SECRETS["IMMICH_API_KEY"]}"]}}
mqtt: {{port: 0, password: "${{NOT_SET_ANYWHERE}}"}}
bridge: {{poll_interval: 1}}
frames:
  kitchen:
    secret: {{value: "{SECRETS["KITCHEN_SECRET"]}"}}
    sources: [{{favorites: true}}]
    image: {{fit: zoom}}
""")
    done = run_bridge(tmp_path, "--config", str(bad), "check-config")
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == f"config error in {bad}:"
    assert [line.split(":")[0].strip() for line in lines[1:]] == [
        "mqtt.password",
        "immich.url",
        "immich.api_key",
        "mqtt.port",
        "bridge.poll_interval",
        "frames.kitchen.secret",
        "frames.kitchen.image.fit",
    ]
    assert "frames.kitchen.image.fit: expected one of contain|cover|blur|smart, got 'zoom'" in (
        done.stderr
    )
    assert_no_secret(done.stderr)


def test_print_config_and_where_the_config_comes_from(
    example: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected = redacted(load_config(example))
    monkeypatch.chdir(tmp_path)  # ./config.yaml is the default
    assert main(["print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == expected
    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("TITANOFRAME_CONFIG", str(example))
    assert main(["print-config", "--log-level", "debug"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == expected
    monkeypatch.setenv("TITANOFRAME_CONFIG", str(tmp_path / "missing.yaml"))
    assert main(["--config", str(example), "check-config"]) == 0  # --config wins
    assert main(["check-config"]) == 2
    assert capsys.readouterr().err.splitlines()[1].endswith("(No such file or directory)")


# --- run --------------------------------------------------------------------------------------


def test_run_hands_the_config_to_the_service_with_secrets_masked_in_logs(
    example: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[Config] = []

    def service_main(config: Config) -> int:
        seen.append(config)
        logging.getLogger("bridge.service").info("key is %s", SECRETS["IMMICH_API_KEY"])
        logging.getLogger("bridge.service").debug("hidden at INFO")
        return 3

    fake = types.ModuleType("bridge.service")
    fake.main = service_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "bridge.service", fake)
    assert main(["--config", str(example), "run"]) == 3
    assert seen == [load_config(example)]
    err = capsys.readouterr().err
    assert err.endswith(" INFO bridge.service key is ***\n")
    assert "hidden" not in err


# --- broker-users -----------------------------------------------------------------------------


def test_broker_users_writes_files_a_real_mosquitto_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if shutil.which("mosquitto") is None:
        pytest.skip("needs the mosquitto binary")
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    config = tmp_path / "config.yaml"
    config.write_text(USERS_CONFIG)
    broker = Mosquitto(tmp_path / "broker", users={})
    assert main(["--config", str(config), "broker-users", "--out", str(broker.workdir)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {broker.workdir / 'passwd'}: users bridge, hall, kitchen, renderer" in out
    assert_no_secret(out)
    assert "renderer-pw-Wd13oPe" not in out
    for name in ("passwd", "acl"):
        assert stat.S_IMODE((broker.workdir / name).stat().st_mode) == 0o600
    assert (broker.workdir / "acl").read_text() == brokerauth.acl_text("titanoframe")
    broker.start()
    clients = []
    try:
        bridge = Collector(broker, "bridge", SECRETS["MQTT_PASSWORD"])
        kitchen = Collector(broker, "kitchen", SECRETS["KITCHEN_SECRET"])
        wrong = Collector(broker, "kitchen", "not-the-secret")
        ha = Collector(broker, "homeassistant", "")
        clients = [bridge, kitchen, wrong, ha]
        assert bridge.wait_connected() and kitchen.wait_connected()
        assert not wrong.wait_connected() and not ha.wait_connected()
        bridge.subscribe("titanoframe/kitchen/state")
        kitchen.client.publish("titanoframe/kitchen/state", b'{"v": 1}', qos=1)
        assert bridge.wait_for(lambda m: ("titanoframe/kitchen/state", b'{"v": 1}', False) in m)
    finally:
        for c in clients:
            c.close()
        broker.stop()


def test_broker_users_needs_every_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KITCHEN_SECRET", SECRETS["KITCHEN_SECRET"])
    config = tmp_path / "config.yaml"
    config.write_text(
        "mqtt: {username: frames-bridge}\n"
        "frames:\n"
        '  kitchen: {secret: "${KITCHEN_SECRET}", sources: [{folder: .}]}\n'
        "  hall: {sources: [{folder: .}]}\n"
    )
    out = tmp_path / "out"
    assert main(["--config", str(config), "broker-users", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"config error in {config}:",
        "  mqtt.username: the broker ACL names the bridge 'bridge', got 'frames-bridge'",
        "  mqtt.password: needed to write the bridge's broker user, got None",
        "  frames.hall.secret: a frame logs in to the broker with its secret, got None",
    ]
    assert not out.exists()


# --- logging ----------------------------------------------------------------------------------


def test_log_lines_are_single_and_secrets_masked(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", ["s3cr3t-Value", "s3cr3t"])
    setup_logging("info", ["s3cr3t-Value", "s3cr3t"])  # again: still one handler
    log = logging.getLogger("bridge.test")
    log.info("connecting with %s and %r", "s3cr3t-Value", {"pw": "s3cr3t"})
    try:
        raise RuntimeError("refused for s3cr3t")
    except RuntimeError:
        log.exception("failed")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    time_, level, name, message = lines[0].split(" ", 3)
    assert (level, name, message) == (
        "INFO",
        "bridge.test",
        "connecting with *** and {'pw': '***'}",
    )
    assert time_.endswith("Z") and "T" in time_
    assert "Traceback" in lines[1] and "RuntimeError: refused for ***" in lines[1]
    assert "s3cr3t" not in "\n".join(lines)
    with pytest.raises(ValueError, match="unknown log level"):
        setup_logging("loud")


def test_secret_filter_on_its_own() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "a=%s b=%d", ("tok-1", 5), None)
    assert SecretFilter(["tok-1", ""]).filter(record)
    assert record.getMessage() == "a=*** b=5"


def test_send_checks_its_arguments_and_says_when_no_bridge_answers(
    example: Path, broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    asset = "5f0c2a9e-7d1b-4c3a-9e8f-0a1b2c3d4e5f"
    assert main(["--config", str(example), "send", "attic", asset]) == 2
    assert "frame 'attic' is not in the config (frames: kitchen, hall)" in capsys.readouterr().err
    assert main(["--config", str(example), "send", "kitchen", "IMG_0001.jpg"]) == 2
    assert "'img_0001.jpg' is not an Immich asset id" in capsys.readouterr().err
    # a broker but no bridge: the command goes out and nobody answers
    cfg = load_config(example)
    no_login = dataclasses.replace(cfg.mqtt, homeassistant_password=None)
    status, text = sendcli.send(dataclasses.replace(cfg, mqtt=no_login), "kitchen", asset)
    assert status == 2 and text.startswith("mqtt.homeassistant_password:")
    mqtt = dataclasses.replace(
        cfg.mqtt,
        host=broker.host,
        port=broker.port,
        homeassistant_password=broker.users["homeassistant"],
    )
    watch = Collector(broker, "kitchen")
    assert watch.wait_connected()
    watch.subscribe("titanoframe/kitchen/cmd/show")
    status, text = sendcli.send(dataclasses.replace(cfg, mqtt=mqtt), "kitchen", asset, wait=0.5)
    assert status == 1 and "no answer within 0.5s: is the bridge running?" in text
    assert watch.wait_for(lambda seen: [p for _, p, _ in seen] == [asset.encode()])
    watch.close()


def test_confirm_removal_checks_the_frame_and_the_login_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "config.yaml"
    path.write_text(USERS_CONFIG)
    assert main(["--config", str(path), "confirm-removal", "attic"]) == 2
    assert "no frame 'attic'" in capsys.readouterr().err
    assert main(["--config", str(path), "confirm-removal", "kitchen"]) == 2
    assert "mqtt.homeassistant_password" in capsys.readouterr().err


def test_confirm_removal_with_nothing_held_says_so(
    broker: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, password: x, "
        f"homeassistant_password: {broker.users['homeassistant']}}}\n"
        "frames:\n  kitchen: {secret: s, sources: [{folder: .}]}\n"
    )
    state = '{"frames": {"kitchen": {"held_removals": 0}}}'
    publish(broker, "bridge", "titanoframe/bridge/state", state, retain=True)
    assert main(["--config", str(path), "confirm-removal", "kitchen"]) == 0
    assert "nothing to confirm" in capsys.readouterr().out

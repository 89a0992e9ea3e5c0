"""What docs/deploy.md and docs/systemd/ tell users to install works: the units are valid and
hardened, their commands are compose's, the Mosquitto snippet starts a broker that refuses
strangers, and the ACL table is the one tests/shared/test_acl.py checks on a real broker."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from common import brokerauth
from common.config import RendererConfig
from renderer.connections import descriptors_needed
from tests.kit import ROOT
from tests.kit.broker import USERS, free_port
from tests.kit.broker import config_text as broker_conf_text
from tests.shared.test_acl import RIGHTS

SYSTEMD = ROOT / "docs" / "systemd"
UNITS = {name: SYSTEMD / f"titanoframe-{name}.service" for name in ("bridge", "renderer")}
DEPLOY = (ROOT / "docs" / "deploy.md").read_text()
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="needs systemd-analyze"
)


def unit(name: str) -> dict[str, list[str]]:
    """`Key` -> every value it is given (a key may repeat), all sections together."""
    out: dict[str, list[str]] = {}
    for line in UNITS[name].read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


@pytest.mark.parametrize("name", UNITS)
def test_unit_is_notify_with_watchdog(name: str) -> None:
    u = unit(name)
    assert u["Type"] == ["notify"] and u["NotifyAccess"] == ["main"]
    assert int(u["WatchdogSec"][0]) > 0
    assert u["EnvironmentFile"] == ["/etc/titanoframe/titanoframe.env"]


@pytest.mark.parametrize("name", UNITS)
def test_unit_is_hardened(name: str) -> None:
    u = unit(name)
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "DynamicUser": "yes",
        "CapabilityBoundingSet": "",
    }.items():
        assert u.get(key) == [value], f"{name}: {key}"
    assert set(u["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}


def test_renderer_may_write_only_its_cache() -> None:
    u = unit("renderer")
    assert u["CacheDirectory"] == ["titanoframe"]
    assert u["ReadWritePaths"] == ["/var/cache/titanoframe"]
    assert "renderer.cache_dir: /var/cache/titanoframe" in DEPLOY
    assert "ReadWritePaths" not in unit("bridge")


def test_renderer_unit_has_open_files_for_its_connections() -> None:
    rc = RendererConfig()
    [limit] = unit("renderer")["LimitNOFILE"]
    assert int(limit) >= descriptors_needed(rc.max_connections, rc.workers)
    assert int(limit) == COMPOSE["services"]["renderer"]["ulimits"]["nofile"]["soft"]


@pytest.mark.parametrize("name", UNITS)
def test_unit_runs_what_compose_runs(name: str) -> None:
    program, *args = unit(name)["ExecStart"][0].split()
    compose = COMPOSE["services"][name]["command"]
    assert program == "/opt/titanoframe/venv/bin/python"
    assert args[:2] == compose[1:3] and args[2:] == ["--config", "/etc/titanoframe/config.yaml"]
    assert "/opt/titanoframe/venv" in DEPLOY and "/etc/titanoframe/config.yaml" in DEPLOY


@needs_systemd_analyze
@pytest.mark.parametrize("name", UNITS)
def test_unit_passes_systemd_analyze(name: str, tmp_path: Path) -> None:
    # verify wants the program to exist: point ExecStart at this interpreter.
    text = UNITS[name].read_text().replace("/opt/titanoframe/venv/bin/python", sys.executable)
    copy = tmp_path / UNITS[name].name
    copy.write_text(text)
    verify = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(copy)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert security.returncode == 0, security.stdout[-2000:]


# --- the broker snippet for a packaged Mosquitto ---------------------------------------------


def conf_snippet() -> str:
    found = re.search(r"conf\.d/titanoframe\.conf`:\n\n```conf\n(.*?)```", DEPLOY, re.S)
    assert found, "docs/deploy.md: the conf.d/titanoframe.conf block is missing"
    return found.group(1)


def test_conf_snippet_uses_only_keys_of_the_shipped_config() -> None:
    shipped = {
        line.split()[0]
        for line in (ROOT / "broker_config" / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {line.split()[0] for line in conf_snippet().splitlines() if line} <= shipped


def needs(*binaries: str) -> None:
    for binary in binaries:
        if shutil.which(binary) is None:
            pytest.skip(f"needs {binary}")


@contextmanager
def running_broker(conf: Path, port: int) -> Iterator[None]:
    proc = subprocess.Popen(
        ["mosquitto", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out = proc.communicate()[0].decode(errors="replace")
                raise AssertionError(f"mosquitto is not listening on {port}:\n{out}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def auth_files(folder: Path) -> None:
    (folder / "passwd").write_text(brokerauth.password_file(USERS))
    (folder / "acl").write_text(brokerauth.acl_text("titanoframe"))


def pub(port: int, *extra: str) -> int:
    cmd = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", "titanoframe/x", "-m", "1"]
    return subprocess.run([*cmd, *extra], capture_output=True, timeout=10).returncode


LOGIN = ("-u", "bridge", "-P", USERS["bridge"])
AS_ROOT = "user root\n" if os.geteuid() == 0 else ""  # root would drop to `mosquitto`


def test_conf_snippet_starts_a_broker_that_refuses_strangers(tmp_path: Path) -> None:
    needs("mosquitto", "mosquitto_pub")
    auth_files(tmp_path)
    port = free_port()
    snippet = conf_snippet().replace("/etc/mosquitto/titanoframe", str(tmp_path))
    snippet = snippet.replace("listener 1883", f"listener {port} 127.0.0.1")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "titanoframe.conf").write_text(snippet)
    # What Debian's own mosquitto.conf puts around the conf.d folder.
    main = f"persistence true\npersistence_location {tmp_path}/\nlog_dest stdout\n{AS_ROOT}"
    (tmp_path / "mosquitto.conf").write_text(main + f"include_dir {tmp_path}/conf.d\n")
    with running_broker(tmp_path / "mosquitto.conf", port):
        assert pub(port) != 0
        assert pub(port, *LOGIN) == 0


def test_tls_recipe_and_listener_block_work(tmp_path: Path) -> None:
    """The certificate commands of docs/deploy.md and the commented TLS block of
    broker_config/mosquitto.conf give a listener that a client trusting the CA accepts."""
    needs("mosquitto", "mosquitto_pub", "openssl")
    recipe = re.search(r"```sh\n(openssl req -x509.*?)```", DEPLOY, re.S)
    assert recipe, "docs/deploy.md: the certificate commands are missing"
    script = recipe.group(1).replace("192.168.1.10", "127.0.0.1")
    subprocess.run(["sh", "-e", "-c", script], cwd=tmp_path, check=True, capture_output=True)
    auth_files(tmp_path)
    port, tls_port = free_port(), free_port()
    block = [
        line[1:].replace("/mosquitto/config/certs", str(tmp_path))
        for line in (ROOT / "broker_config" / "mosquitto.conf").read_text().splitlines()
        if re.match(r"#(listener 8883$|(cafile|certfile|keyfile) )", line)
    ]
    assert len(block) == 4
    block[0] = f"listener {tls_port} 127.0.0.1"
    (tmp_path / "data").mkdir()
    conf = broker_conf_text(port, tmp_path)
    (tmp_path / "mosquitto.conf").write_text(conf + "\n".join(block) + "\n")
    with running_broker(tmp_path / "mosquitto.conf", tls_port):
        trusted = ("--cafile", str(tmp_path / "ca.crt"))
        assert pub(tls_port, *trusted, *LOGIN) == 0
        assert pub(tls_port, *LOGIN) != 0  # plain MQTT on the TLS port gets nowhere


# --- the ACL table ----------------------------------------------------------------------------

# docs column -> the role of tests/shared/test_acl.py's table that plays it for frame `kitchen`.
COLUMNS = {
    "bridge": "bridge",
    "renderer": "renderer",
    "homeassistant": "homeassistant",
    "the frame `<frame>`": "kitchen",
    "any other frame": "hall",
    "anonymous": "anonymous",
}
EXAMPLE = {"<base>": "titanoframe", "<frame>": "kitchen", "<prefix>": "homeassistant",
           "<shard>": "a", "<command>": "next"}  # fmt: skip


def docs_table() -> dict[str, dict[str, str]]:
    start = DEPLOY.index("| topic | bridge |")
    rows = []
    for line in DEPLOY[start:].splitlines():
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    header, _, *body = rows
    return {row[0].strip("`"): dict(zip(header[1:], row[1:], strict=True)) for row in body}


def test_docs_acl_table_is_the_tested_one() -> None:
    table = docs_table()
    assert list(table[next(iter(table))]) == list(COLUMNS)
    for generic, cells in table.items():
        topic = generic
        for name, value in EXAMPLE.items():
            topic = topic.replace(name, value)
        assert topic in RIGHTS, f"docs row {generic} ({topic}) is not in tests/shared/test_acl.py"
        for column, role in COLUMNS.items():
            documented = cells[column].replace("–", "-")
            assert documented == RIGHTS[topic][role], f"{generic} / {column}"

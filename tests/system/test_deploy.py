"""The deployment files agree with the code and with each other: compose.yaml (valid by the
Compose Specification), Dockerfile, .dockerignore, .env.example and config.example.yaml."""

from __future__ import annotations

import json
import posixpath
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from common.config import BridgeConfig, RendererConfig, load_config
from common.configmodel import split_listen
from renderer.connections import descriptors_needed
from tests.kit import ROOT

COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
EXAMPLE = ROOT / "config.example.yaml"
PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
APPS = ("bridge", "renderer")
PACKAGES: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
    "packages"
]
needs_example = pytest.mark.skipif(not EXAMPLE.exists(), reason="no config.example.yaml")


def mounts(service: str) -> dict[str, tuple[str, str]]:
    """Container path -> (source, mode) for every volume of `service`."""
    out = {}
    for spec in SERVICES[service].get("volumes", []):
        mode = "rw"
        if spec.endswith((":ro", ":rw")):
            spec, mode = spec[:-3], spec[-2:]
        source, target = spec.rsplit(":", 1)  # a source may hold ${VAR:-default}
        out[target] = (source, mode)
    return out


def named_volume(service: str, target: str) -> str:
    source, _ = mounts(service)[target]
    assert source in COMPOSE["volumes"], f"{service}: {target} is not on a named volume"
    return source


def health_url(service: str) -> str:
    found = re.search(r"https?://[^'\"\s]+", " ".join(SERVICES[service]["healthcheck"]["test"]))
    assert found, f"{service}: no URL in its healthcheck"
    return found.group(0)


def container_ports(service: str) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in SERVICES[service]["ports"]}


def broker_conf() -> dict[str, str]:
    lines = (ROOT / "broker_config" / "mosquitto.conf").read_text().splitlines()
    return dict(line.split(maxsplit=1) for line in lines if line.strip() and line[0] != "#")


def strings(node: object) -> list[str]:
    """Every string value in parsed YAML (comments are not values)."""
    if isinstance(node, dict):
        return [s for value in node.values() for s in strings(value)]
    if isinstance(node, list):
        return [s for value in node for s in strings(value)]
    return [node] if isinstance(node, str) else []


def example_variables() -> dict[str, bool]:
    """Every ${VAR} in config.example.yaml's values -> whether it has a default."""
    text = " ".join(strings(yaml.safe_load(EXAMPLE.read_text())))
    return {m.group(1): m.group(2) is not None for m in PLACEHOLDER.finditer(text)}


# --- compose.yaml -----------------------------------------------------------------------------


def test_compose_is_valid_by_the_specification() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(COMPOSE)


def test_services_and_restart_policies() -> None:
    assert set(SERVICES) == {"broker-users", "mosquitto", "bridge", "renderer"}
    for name in ("mosquitto", *APPS):
        assert SERVICES[name]["restart"] == "unless-stopped"
    assert SERVICES["broker-users"]["restart"] == "no"


@pytest.mark.parametrize("name", [*APPS, "broker-users"])
def test_app_commands_read_a_mounted_config(name: str) -> None:
    service = SERVICES[name]
    command = service["command"]
    module = "renderer" if name == "renderer" else "bridge"
    assert command[:3] == ["python", "-m", module]
    config = command[command.index("--config") + 1]
    assert mounts(name)[config][1] == "ro"
    assert service["build"] == {"context": "."} and service["env_file"] == ".env"
    assert service["image"] == SERVICES["bridge"]["image"]  # one image for all three


def test_app_commands() -> None:
    assert SERVICES["bridge"]["command"] == [
        "python", "-m", "bridge", "--config", "/config/config.yaml"
    ]  # fmt: skip
    assert SERVICES["renderer"]["command"] == [
        "python", "-m", "renderer", "--config", "/config/config.yaml"
    ]  # fmt: skip


def test_start_order() -> None:
    for name in APPS:
        assert SERVICES[name]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    users = SERVICES["mosquitto"]["depends_on"]["broker-users"]["condition"]
    assert users == "service_completed_successfully"


def test_broker_mounts_match_its_config() -> None:
    conf = broker_conf()
    assert SERVICES["mosquitto"]["image"] == "eclipse-mosquitto:2"
    assert mounts("mosquitto")["/mosquitto/config"] == ("./broker_config", "ro")
    named_volume("mosquitto", conf["persistence_location"].rstrip("/"))
    auth_dir = posixpath.dirname(conf["password_file"])
    assert posixpath.dirname(conf["acl_file"]) == auth_dir
    out = SERVICES["broker-users"]["command"][-1]
    assert named_volume("mosquitto", auth_dir) == named_volume("broker-users", out)
    assert container_ports("mosquitto") == {int(conf["listener"])}
    # broker-users runs as the broker image's user so the broker can read its 0600 files.
    assert SERVICES["broker-users"]["user"] == "1883:1883"
    assert "install -d -o 1883 -g 1883 -m 0700 " + out in DOCKERFILE


def test_broker_healthcheck_looks_at_its_port() -> None:
    port = int(broker_conf()["listener"])
    assert f":{port:04X} " in " ".join(SERVICES["mosquitto"]["healthcheck"]["test"])


def test_renderer_port_is_the_config_default() -> None:
    port = RendererConfig().port
    assert container_ports("renderer") == {port}
    assert urlsplit(health_url("renderer")).port == port
    assert re.search(rf"^EXPOSE .*\b{port}\b", DOCKERFILE, re.M)


def test_bridge_healthcheck_reaches_its_metrics_listener() -> None:
    host, port = split_listen(SERVICES["bridge"]["environment"]["BRIDGE_METRICS_LISTEN"])
    assert host == "0.0.0.0"  # loopback inside the container is unreachable from the mapping
    assert port == split_listen(BridgeConfig().metrics_listen or "")[1]
    assert urlsplit(health_url("bridge")).port == port
    assert container_ports("bridge") == {port}
    assert all(str(p).startswith("127.0.0.1:") for p in SERVICES["bridge"]["ports"])
    assert re.search(rf"^EXPOSE .*\b{port}\b", DOCKERFILE, re.M)


def test_renderer_has_open_files_for_its_connections() -> None:
    nofile = SERVICES["renderer"]["ulimits"]["nofile"]
    rc = RendererConfig()
    assert nofile["soft"] == nofile["hard"] >= descriptors_needed(rc.max_connections, rc.workers)


def test_renderer_cache_is_a_volume_owned_by_the_service_user() -> None:
    renderer = yaml.safe_load(EXAMPLE.read_text())["renderer"] if EXAMPLE.exists() else {}
    cache_dir = str(renderer.get("cache_dir") or RendererConfig().cache_dir)
    target = posixpath.normpath(posixpath.join("/config", cache_dir))
    named_volume("renderer", target)
    assert f"install -d -o titanoframe -g titanoframe -m 0750 {target}" in DOCKERFILE


@needs_example
def test_example_config_works_inside_compose(tmp_path: Path) -> None:
    """Loaded with compose's environment, the example config reaches the broker by its service
    name and the bridge listens where its health check looks."""
    (tmp_path / "photos").mkdir()
    shutil.copy(EXAMPLE, tmp_path / "config.yaml")
    secrets = {name: "x" for name, has_default in example_variables().items() if not has_default}
    for name in APPS:
        env = {**secrets, **SERVICES[name]["environment"]}
        config = load_config(tmp_path / "config.yaml", env)
        assert config.mqtt.host == "mosquitto", (
            'config.example.yaml: mqtt.host should be "${MQTT_HOST:-localhost}"'
        )
        assert config.renderer.port in container_ports("renderer")
        if name == "bridge":
            assert config.bridge.metrics_listen == env["BRIDGE_METRICS_LISTEN"], (
                "config.example.yaml: bridge.metrics_listen should be "
                '"${BRIDGE_METRICS_LISTEN:-127.0.0.1:9110}"'
            )


# --- .env.example -----------------------------------------------------------------------------


def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@needs_example
def test_env_example_names_every_config_variable() -> None:
    documented = env_example()
    set_by_compose = {k for s in APPS for k in SERVICES[s].get("environment", {})}
    for name, has_default in example_variables().items():
        if has_default and name in set_by_compose:
            continue
        assert name in documented, f".env.example lacks {name}, used in config.example.yaml"


def test_env_example_holds_no_values() -> None:
    assert env_example() and all(value == "" for value in env_example().values())


def test_compose_variables_are_documented() -> None:
    used = set(PLACEHOLDER.findall(" ".join(strings(COMPOSE))))
    text = (ROOT / ".env.example").read_text()
    for name, _ in used:
        assert f"{name}=" in text, f".env.example does not mention {name}"


# --- Dockerfile and .dockerignore ---------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", DOCKERFILE)
    lines = [line.strip() for line in joined.splitlines()]
    return [tuple(line.split(maxsplit=1)) for line in lines if line and line[0] != "#"]  # type: ignore[misc]


def test_dockerfile_base_is_pinned_slim() -> None:
    froms = [arg for op, arg in instructions() if op == "FROM"]
    assert froms == ["python:3.11-slim-bookworm"]


def test_dockerfile_runs_unprivileged_after_installing() -> None:
    ops = instructions()
    users = [i for i, (op, _) in enumerate(ops) if op == "USER"]
    runs = [i for i, (op, _) in enumerate(ops) if op == "RUN"]
    assert users and users[-1] > runs[-1]
    assert ops[users[-1]][1] not in ("root", "0", "0:0")


def test_dockerfile_installs_runtime_dependencies_only() -> None:
    pip = [arg for op, arg in instructions() if op == "RUN" and "pip install" in arg]
    assert len(pip) == 1 and re.search(r"pip install \.(\s|$)", pip[0]), pip
    assert "[dev]" not in DOCKERFILE


def test_dockerfile_has_a_healthcheck_and_no_secrets() -> None:
    ops = instructions()
    assert any(op == "HEALTHCHECK" and "HEALTHCHECK_URL" in arg for op, arg in ops)
    url = next(arg for op, arg in ops if op == "ENV" and arg.startswith("HEALTHCHECK_URL="))
    assert urlsplit(url.split("=", 1)[1]).path == "/healthz"
    assert urlsplit(url.split("=", 1)[1]).port == RendererConfig().port  # the default CMD
    for op, arg in ops:
        if op in ("COPY", "ADD"):
            assert ".env" not in arg and "config.yaml" not in arg.replace("config/", ""), arg
        if op in ("ENV", "ARG"):
            assert not re.search(r"(PASSWORD|SECRET|API_KEY|URL_KEY|TOKEN)", arg), arg
    assert not any(op == "ADD" for op, _ in ops)


def test_dockerignore_lets_in_only_the_sources() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    let_in = {line[1:] for line in lines if line.startswith("!")}
    assert let_in == {"pyproject.toml", "README.md", *PACKAGES}
    copied = [src for op, arg in instructions() if op == "COPY" for src in arg.split()[:-1]]
    for source in copied:
        assert source in let_in, f"COPY {source} is kept out of the build context"
    assert set(PACKAGES) <= set(copied), "the image needs every package pyproject.toml installs"

"""titanoframe's configuration: one YAML file for bridge and renderer, `${VAR}` placeholders taken
from the environment, checked into frozen dataclasses with every problem reported at once.

Pure except `load_config`, which reads the file (and checking, which looks for `folder` and
`ca_file` paths on disk). The dataclasses themselves live in `common.configmodel`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from common.configcheck import (
    Checker,
    Problems,
    boolean,
    existing_path,
    http_url,
    integer,
    listen,
    number,
    substitute,
    text,
    timezone,
    topic,
)
from common.configframes import parse_frames
from common.configmodel import (
    HIDE_TAG,
    SECRET_KEYS,
    BridgeConfig,
    Config,
    Exclude,
    FrameConfig,
    ImageProfile,
    ImmichConfig,
    MqttConfig,
    RendererConfig,
    ScheduleEntry,
    Source,
)

__all__ = [
    "HIDE_TAG",
    "BridgeConfig",
    "Config",
    "ConfigError",
    "Exclude",
    "FrameConfig",
    "ImageProfile",
    "ImmichConfig",
    "MqttConfig",
    "RendererConfig",
    "ScheduleEntry",
    "Source",
    "dump_redacted",
    "load_config",
    "parse_config",
    "redacted",
    "secret_values",
]

TOP_KEYS = ("immich", "mqtt", "renderer", "bridge", "frames")
REDACTED = "***"


class ConfigError(Exception):
    """Every problem found in a config; `.errors` holds one `path: message, got <value>` each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> Config:
    """Read and check the YAML file at `path`; relative paths in it are relative to its folder."""
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise ConfigError([f"{path}: cannot read the config file ({reason})"]) from None
    try:
        data = yaml.load(source, Loader=_Loader)  # a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ConfigError([f"{path}: {_yaml_problem(e)}"]) from None
    return parse_config(data, os.environ if env is None else env, path.resolve().parent)


def parse_config(data: object, env: Mapping[str, str], base_dir: Path) -> Config:
    """Check already-parsed YAML `data`; raises ConfigError listing every problem."""
    p = Problems()
    top = p.mapping("config", substitute(p, "", data, env))
    if top is None:
        raise ConfigError(p.errors)
    p.unknown_keys("", top, TOP_KEYS)
    immich: ImmichConfig | None = None
    if "immich" in top:
        required = ("url", "api_key")
        immich = _section(p, "immich", top["immich"], ImmichConfig, _immich_checks(), required)
    mqtt = _section(p, "mqtt", top.get("mqtt"), MqttConfig, _mqtt_checks(base_dir))
    renderer = _section(p, "renderer", top.get("renderer"), RendererConfig, _renderer(base_dir))
    bridge = _section(p, "bridge", top.get("bridge"), BridgeConfig, _bridge_checks())
    if bridge is not None and bridge.full_scan_interval < bridge.poll_interval:
        limit = f"bridge.poll_interval ({bridge.poll_interval:g})"
        p.add("bridge.full_scan_interval", f"expected at least {limit}", bridge.full_scan_interval)
    if mqtt is not None and mqtt.base_topic == mqtt.discovery_prefix:
        p.add(
            "mqtt.base_topic", "expected a topic other than mqtt.discovery_prefix", mqtt.base_topic
        )
    frames: tuple[FrameConfig, ...] = ()
    if "frames" in top:
        frames = parse_frames(p, "frames", top["frames"], base_dir, "immich" in top)
    else:
        p.add("frames", "required key is missing; a config needs at least one frame", None)
    if p.errors or mqtt is None or renderer is None or bridge is None:
        raise ConfigError(p.errors)
    # The default cache folder, like a configured one, sits next to the config file.
    renderer = dataclasses.replace(renderer, cache_dir=(base_dir / renderer.cache_dir).resolve())
    return Config(immich=immich, mqtt=mqtt, renderer=renderer, bridge=bridge, frames=frames)


def _section(
    p: Problems,
    name: str,
    data: object,
    cls: type[Any],
    checks: Mapping[str, Checker],
    required: tuple[str, ...] = (),
) -> Any:
    """One flat section → its dataclass, or None when it has errors."""
    body = p.mapping(name, data)
    if body is None:
        return None
    before = p.count
    kwargs = p.fields(name, body, checks, required)
    return cls(**kwargs) if p.count == before else None


def _immich_checks() -> dict[str, Checker]:
    return {"url": http_url, "api_key": text(), "timeout": number(0, above=True)}


def _mqtt_checks(base_dir: Path) -> dict[str, Checker]:
    ca_file = existing_path(base_dir, "file", optional=True)
    return {
        "host": text(),
        "port": integer(1, 65535),
        "username": text(optional=True),
        "password": text(optional=True),
        "base_topic": topic,
        "discovery_prefix": topic,
        "tls": boolean,
        "ca_file": lambda value: None if (found := ca_file(value)) is None else str(found),
        "homeassistant_password": text(optional=True),
    }


def _renderer(base_dir: Path) -> dict[str, Checker]:
    return {
        "listen": listen(),
        "public_url": http_url,
        "cache_dir": existing_path(base_dir, None),
        "cache_max_mb": integer(16),
        "url_key": text(optional=True),
        "mqtt_password": text(optional=True),
        "workers": integer(1, 64),
        "upstream_timeout": number(0, above=True),
        "max_upstream_mb": integer(1),
        "head_timeout": number(0, 300, above=True),
        "max_connections": integer(16, 100_000),
        "cast_token": text(optional=True),
        "cast_max_mb": integer(1, 50),
        "cast_per_minute": integer(1, 600),
    }


def _bridge_checks() -> dict[str, Checker]:
    return {
        "poll_interval": number(5),
        "full_scan_interval": number(5),
        "max_removal": number(0, 1, above=True),
        "removal_hold": number(0, 90 * 86400),
        "metrics_listen": listen(optional=True),
        "timezone": timezone,
        "include_archived": boolean,
        "include_partners": boolean,
        "guest_days": number(0, 365, above=True),
    }


# --- output -----------------------------------------------------------------------------------


def redacted(config: Config) -> dict[str, Any]:
    """The effective config as plain data in the file's shape, every secret replaced by "***"."""
    out: dict[str, Any] = {}
    if config.immich is not None:
        out["immich"] = _plain(config.immich)
    out["mqtt"] = _plain(config.mqtt)
    out["renderer"] = _plain(config.renderer)
    out["bridge"] = _plain(config.bridge)
    out["frames"] = {frame.id: _frame(frame) for frame in config.frames}
    return out


def dump_redacted(config: Config) -> str:
    """YAML text of `redacted(config)`."""
    return yaml.safe_dump(redacted(config), sort_keys=False, allow_unicode=True)


def redacted_line(config: Config) -> str:
    """`redacted(config)` as one line of JSON, for the log line each daemon writes at start."""
    return json.dumps(redacted(config), separators=(",", ":"), default=str)


def format_errors(path: str | Path, errors: Sequence[str]) -> str:
    """What both daemons print for a config with errors: the file, then one error a line."""
    return f"config error in {path}:\n" + "".join(f"  {line}\n" for line in errors)


def secret_values(config: Config) -> tuple[str, ...]:
    """Every secret the config holds, for log filters."""
    found = [
        config.immich.api_key if config.immich else None,
        config.mqtt.password,
        config.mqtt.homeassistant_password,
        config.renderer.url_key,
        config.renderer.mqtt_password,
        *(frame.secret for frame in config.frames),
        config.renderer.cast_token,
        *(frame.cast_token for frame in config.frames),
    ]
    return tuple(dict.fromkeys(s for s in found if s))


def _plain(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.name in SECRET_KEYS and value is not None:
            value = REDACTED
        out[f.name] = str(value) if isinstance(value, Path) else value
    return out


def _frame(frame: FrameConfig) -> dict[str, Any]:
    return {
        "secret": None if frame.secret is None else REDACTED,
        "cast_token": None if frame.cast_token is None else REDACTED,
        "sources": [
            {s.kind: s.value, **({} if s.stacks == "primary" else {"stacks": s.stacks})}
            for s in frame.sources
        ],
        "exclude": [{e.kind: e.value} for e in frame.exclude],
        "image": _plain(frame.image),
        "schedule": [
            {"at": e.at_text, "days": list(e.days), **dict(e.commands)} for e in frame.schedule
        ],
        "long_press": frame.long_press,
    }


# --- YAML -------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads `23:00` as text, not YAML 1.1's
    base-60 number 1380 (schedule times are written that way)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, Hashable) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, re.compile(r"(?![^\n]*:)" + regexp.pattern, regexp.flags))
        if tag.endswith((":int", ":float"))
        else (tag, regexp)
        for tag, regexp in resolvers
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_problem(error: yaml.YAMLError) -> str:
    """Where and what, without quoting the file's text (it may hold a secret)."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return f"invalid YAML at line {mark.line + 1}, column {mark.column + 1}: {error.problem}"
    return "invalid YAML"

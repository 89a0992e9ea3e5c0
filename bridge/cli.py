"""`python -m bridge` (or `titanoframe-bridge`): run the bridge, check or print the config, write
the broker's users.

Does I/O: reads the config, writes the broker files, prints to stdout/stderr. Exit status 0 on
success, 1 when the bridge cannot start, 2 for a config error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from common import brokerauth
from common.config import (
    Config,
    ConfigError,
    dump_redacted,
    format_errors,
    load_config,
    redacted_line,
    secret_values,
)
from common.logsetup import LEVELS, REDACTED_BY_KEY, setup_logging

CONFIG_ENV = "TITANOFRAME_CONFIG"
EXIT_FAILED = 1
EXIT_CONFIG = 2


def _options() -> argparse.ArgumentParser:
    # Accepted before or after the subcommand; SUPPRESS keeps a subcommand's parser from
    # overwriting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help=f"config file (default: ${CONFIG_ENV}, else ./config.yaml)",
    )
    common.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        type=str.upper,
        choices=LEVELS,
        help="log level (default: INFO)",
    )
    return common


def _parser() -> argparse.ArgumentParser:
    common = _options()
    parser = argparse.ArgumentParser(
        prog="python -m bridge",
        description="titanoframe bridge: Immich pictures to photo frames over MQTT.",
        parents=[common],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", parents=[common], help="run the bridge (the default)")
    sub.add_parser(
        "check-config", parents=[common], help="check the config and print it, secrets hidden"
    )
    sub.add_parser("print-config", parents=[common], help="print the effective config as YAML")
    users = sub.add_parser(
        "broker-users",
        parents=[common],
        help="write Mosquitto's passwd and acl files for the bridge, services and frames",
    )
    users.add_argument("--out", required=True, type=Path, help="folder to write passwd and acl to")
    send = sub.add_parser(
        "send",
        parents=[common],
        help="send an Immich photo to a frame: shown now, kept for bridge.guest_days",
    )
    send.add_argument("frame", help="the frame's id")
    send.add_argument("asset_id", help="the Immich asset id of the photo")
    confirm = sub.add_parser(
        "confirm-removal",
        parents=[common],
        help="release a held mass removal of a frame's pictures now (see bridge.removal_hold)",
    )
    confirm.add_argument("frame", help="the frame id, or all")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    path = Path(getattr(args, "config", None) or os.environ.get(CONFIG_ENV) or "config.yaml")
    level: str = getattr(args, "log_level", "INFO")
    try:
        config = load_config(path)
    except ConfigError as e:
        return _config_errors(path, e.errors)
    command = args.command or "run"
    if command == "check-config":
        print(f"config OK: {len(config.frames)} frames")
        print(dump_redacted(config), end="")
        return 0
    if command == "print-config":
        print(dump_redacted(config), end="")
        return 0
    if command == "broker-users":
        return _broker_users(path, config, args.out)
    if command == "send":
        status, text = importlib.import_module("bridge.sendcli").send(
            config, args.frame, args.asset_id
        )
        print(text, file=sys.stdout if status == 0 else sys.stderr)
        return int(status)
    if command == "confirm-removal":
        confirm = importlib.import_module("bridge.confirm")
        return int(confirm.confirm_removal(config, args.frame))
    return _run(config, level)


def _config_errors(path: Path, errors: list[str]) -> int:
    print(format_errors(path, errors), end="", file=sys.stderr)
    return EXIT_CONFIG


def _run(config: Config, level: str) -> int:
    setup_logging(level, secret_values(config))
    line = redacted_line(config)
    logging.getLogger("bridge").info("effective config: %s", line, extra=REDACTED_BY_KEY)
    # Imported here so check-config and friends start without loading the daemon's modules.
    service = importlib.import_module("bridge.service")
    result = service.main(config)
    return result if isinstance(result, int) else 0


def broker_users(config: Config) -> tuple[dict[str, str], list[str]]:
    """`{username: password}` for every MQTT user the config defines, and the problems found."""
    errors: list[str] = []
    users: dict[str, str] = {}
    mqtt = config.mqtt
    if mqtt.username != "bridge":
        errors.append(
            f"mqtt.username: the broker ACL names the bridge 'bridge', got {mqtt.username!r}"
        )
    if mqtt.password is None:
        errors.append("mqtt.password: needed to write the bridge's broker user, got None")
    else:
        users["bridge"] = mqtt.password
    if config.renderer.mqtt_password is not None:
        users["renderer"] = config.renderer.mqtt_password
    if mqtt.homeassistant_password is not None:
        users["homeassistant"] = mqtt.homeassistant_password
    for frame in config.frames:
        if frame.secret is None:
            errors.append(
                f"frames.{frame.id}.secret: a frame logs in to the broker with its secret, got None"
            )
        else:
            users[frame.id] = frame.secret
    for name, password in users.items():
        if "\n" in password or "\r" in password:
            errors.append(f"{_secret_key(name)}: must be a single line, got '***'")
    return users, errors


def _secret_key(user: str) -> str:
    keys = {
        "bridge": "mqtt.password",
        "renderer": "renderer.mqtt_password",
        "homeassistant": "mqtt.homeassistant_password",
    }
    return keys.get(user, f"frames.{user}.secret")


def _broker_users(path: Path, config: Config, out: Path) -> int:
    users, errors = broker_users(config)
    if errors:
        return _config_errors(path, errors)
    try:
        passwd = brokerauth.password_file(users)
        acl = brokerauth.acl_text(config.mqtt.base_topic, config.mqtt.discovery_prefix)
    except ValueError as e:  # what the config check let through but the broker cannot take
        return _config_errors(path, [str(e)])
    try:
        out.mkdir(parents=True, exist_ok=True)
        _write_private(out / "passwd", passwd)
        _write_private(out / "acl", acl)
    except OSError as e:
        print(f"error: cannot write to {out}: {e.strerror}", file=sys.stderr)
        return EXIT_FAILED
    print(f"wrote {out / 'passwd'}: users {', '.join(sorted(users))}")
    print(f"wrote {out / 'acl'}: base topic {config.mqtt.base_topic}")
    print("Mosquitto reads them when it starts or on SIGHUP.")
    return 0


def _write_private(path: Path, content: str) -> None:
    """Replace `path` atomically with a 0600 file: a failed write leaves the old one intact."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

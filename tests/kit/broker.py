"""A real Mosquitto for tests, started from the project's own `broker_config/`.

Only what a test machine must change is overridden: the listener port (a free loopback port),
the persistence directory, and the password and ACL files (written from `common.brokerauth`,
exactly as `python -m bridge broker-users` writes them). Everything else — `allow_anonymous
false`, persistence, size limits — is the file users deploy. Without a `mosquitto` binary but
with a reachable Docker engine, the same config runs in `eclipse-mosquitto:2` via testcontainers.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Protocol

from common import brokerauth
from tests.kit import ROOT
from tools import broker as demo_broker
from tools.broker import free_port as free_port  # re-exported for the tests

CONFIG = ROOT / "broker_config" / "mosquitto.conf"
BASE = "titanoframe"

# Test credentials: one user per role, plus two frames.
USERS = {
    "bridge": "bridge-pw-7f3a",
    "renderer": "renderer-pw-91c2",
    "homeassistant": "ha-pw-55d0",
    "kitchen": "kitchen-pw-0b1e",
    "hall": "hall-pw-c4d8",
}


# The broker binds a client's id to its user name (`use_username_as_clientid`): one connection
# per user. Tests that need several clients of one role at once (observers, markers, a
# publisher beside a running bridge) log in as aliases, `<role>.<n>`, with the role's password
# and exactly its rights (its ACL section copied; a frame's patterns written out for its id).
ALIASES = 24


def aliases_acl(acl: str, users: dict[str, str]) -> str:
    """ACL sections giving each `<role>.<n>` alias the rights of its role."""
    sections: dict[str, list[str]] = {}
    patterns: list[str] = []
    current: str | None = None
    for line in acl.splitlines():
        if line.startswith("user "):
            current = line.split(maxsplit=1)[1]
            sections[current] = []
        elif line.startswith("pattern "):
            current = None
            patterns.append("topic " + line.split(maxsplit=1)[1])
        elif line.startswith("topic ") and current is not None:
            sections[current].append(line)
        elif not line.strip():
            current = None
    out = []
    for role in users:
        rights = sections.get(role) or [p.replace("%u", role) for p in patterns]
        for n in range(1, ALIASES + 1):
            out += ["", f"user {role}.{n}", *rights]
    return "\n".join(out) + "\n"


def config_text(port: int, workdir: Path, container: bool = False) -> str:
    """broker_config/mosquitto.conf with only the machine-specific lines replaced."""
    if container:
        return demo_broker.config_text(1883, "/mosquitto/config", False, None, "/mosquitto/data/")
    # As root Mosquitto drops to the `mosquitto` user, which cannot enter pytest's private
    # temp dirs; a test broker has nothing to protect, so it keeps the current user.
    return demo_broker.config_text(port, workdir, os.geteuid() == 0)


class Client(Protocol):
    def close(self) -> None: ...


class Mosquitto:
    """One broker process. `start()`, `stop()`, `restart()` keep the same port and data.

    Test clients register in `clients`; the fixture closes them with the broker, so none is
    left reconnecting in the background of later tests.
    """

    def __init__(self, workdir: Path, users: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        roles = dict(USERS if users is None else users)
        self.users = dict(roles)
        self.users.update(
            (f"{role}.{n}", pw) for role, pw in roles.items() for n in range(1, ALIASES + 1)
        )
        self._aliases = {role: itertools.cycle(range(1, ALIASES + 1)) for role in roles}
        self._alias_lock = threading.Lock()
        self.host = "127.0.0.1"
        self.port = free_port()
        self.log_path = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.container: object | None = None
        self.clients: list[Client] = []
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        (workdir / "passwd").write_text(brokerauth.password_file(self.users))
        acl = brokerauth.acl_text(BASE)
        (workdir / "acl").write_text(acl + aliases_acl(acl, roles))
        os.chmod(workdir / "passwd", 0o600)
        os.chmod(workdir / "acl", 0o600)

    def alias(self, user: str) -> str:
        """A user name with `user`'s password and rights that no other live client of this
        test uses (aliases are handed out in turn), so it takes no connection over."""
        role = re.sub(r"\.\d+\Z", "", user)
        if role not in self._aliases or role != user:
            return user
        with self._alias_lock:
            return f"{role}.{next(self._aliases[role])}"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    def start(self) -> None:
        binary = shutil.which("mosquitto")
        if binary is None:
            self._start_container()
            return
        self.conf_path.write_text(config_text(self.port, self.workdir))
        log = open(self.log_path, "ab")  # noqa: SIM115 — owned by the process for its lifetime
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.conf_path)], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        self._wait_ready()

    def _start_container(self) -> None:
        from testcontainers.core.container import DockerContainer

        self.conf_path.write_text(config_text(1883, self.workdir, container=True))
        c = DockerContainer("eclipse-mosquitto:2")
        c.with_volume_mapping(str(self.workdir), "/mosquitto/config", "rw")
        c.with_bind_ports(1883, self.port)
        c.start()
        self.container = c
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start:\n{self.log()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not accept connections in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None:
            # SIGTERM lets Mosquitto write its persistence file, which restart tests rely on.
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.container is not None:
            self.container.stop()  # type: ignore[attr-defined]
            self.container = None

    def close_clients(self) -> None:
        while self.clients:
            self.clients.pop().close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        if self.container is not None:
            out, err = self.container.get_logs()  # type: ignore[attr-defined]
            return str((out + err).decode(errors="replace"))
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

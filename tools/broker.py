"""A Mosquitto for the demo, run from the project's broker_config/mosquitto.conf with only the
machine-specific lines replaced (loopback port, data folder, password and ACL files written by
`common.brokerauth`). Does file and process I/O.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from common import brokerauth

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "broker_config" / "mosquitto.conf"
_OVERRIDDEN = ("listener", "persistence_location", "password_file", "acl_file", "log_dest", "user")


def free_port() -> int:
    """A loopback port free now, below the kernel's ephemeral range: a port the kernel handed
    out (bind to 0) may be handed out again as the source port of some client's connection
    before the server meant to listen on it binds, which then fails ("address in use")."""
    low = _ephemeral_low()
    for _ in range(50):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # the range is crowded: any port the kernel gives
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return max(2048, int(f.read().split()[0]))
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default start


def config_text(
    port: int,
    workdir: Path | str,
    as_root: bool,
    address: str | None = "127.0.0.1",
    data: str | None = None,
) -> str:
    """broker_config/mosquitto.conf with only the machine-specific lines replaced.

    `workdir` holds passwd and acl; `data` is the persistence folder (default workdir/data/);
    `address` None listens on every interface (inside a container).
    """
    kept = []
    for line in CONFIG.read_text().splitlines():
        key = line.split(maxsplit=1)[0] if line.strip() else ""
        if key == "listener":  # in place: the listener's own options follow it
            kept.append(f"listener {port}" + (f" {address}" if address else ""))
        elif not (key in _OVERRIDDEN or re.match(r"#?\s*(cafile|certfile|keyfile)\b", line)):
            kept.append(line)
    kept += [
        f"persistence_location {data or f'{workdir}/data/'}",
        f"password_file {workdir}/passwd",
        f"acl_file {workdir}/acl",
        "log_dest stdout",
    ]
    if as_root:  # Mosquitto would drop to its own user, which cannot read this folder
        kept.append("user root")
    return "\n".join(kept) + "\n"


def start(
    workdir: Path, users: dict[str, str], base: str = "titanoframe"
) -> tuple[int, subprocess.Popen[bytes]]:
    """Start Mosquitto; returns (port, process). Raises RuntimeError when it does not come up."""
    binary = shutil.which("mosquitto")
    if binary is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    (workdir / "passwd").write_text(brokerauth.password_file(users))
    (workdir / "acl").write_text(brokerauth.acl_text(base))
    (workdir / "passwd").chmod(0o600)
    (workdir / "acl").chmod(0o600)
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(config_text(port, workdir, os.geteuid() == 0))
    log = open(workdir / "mosquitto.log", "ab")  # noqa: SIM115 -- the process owns it
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    wait_port(port, proc, "mosquitto")
    return port, proc


def wait_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited at start (status {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not listen on port {port} within {timeout:.0f}s")

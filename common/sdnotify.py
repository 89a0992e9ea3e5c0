"""systemd's service notification protocol (`sd_notify`), in plain Python. Does I/O: one
datagram to `$NOTIFY_SOCKET` per call.

A unit with `Type=notify` waits for `READY=1`; with `WatchdogSec=` it restarts the service when
`WATCHDOG=1` stops arriving. Outside systemd (`NOTIFY_SOCKET` unset: a shell, a container)
every call is a no-op, and no call ever raises: a failed notification must not take a running
service down.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

READY = "READY=1"
STOPPING = "STOPPING=1"
WATCHDOG = "WATCHDOG=1"
RELOADING = "RELOADING=1"


def _address(raw: str) -> str | None:
    # "@name" is Linux's abstract namespace, spelt with a leading NUL on the wire.
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    return None  # e.g. "vsock:…", which a service on a host never gets


def notify(state: str, env: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. `"READY=1"`, `"STATUS=syncing"`); True when it was delivered.

    `env` defaults to `os.environ`. False when there is no notification socket or sending failed.
    """
    raw = (os.environ if env is None else env).get("NOTIFY_SOCKET", "")
    address = _address(raw)
    family = getattr(socket, "AF_UNIX", None)
    if address is None or family is None:
        return False
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8", "replace"))
    except (OSError, ValueError):
        return False
    return True


def status(text: str, env: Mapping[str, str] | None = None) -> bool:
    """Set the one-line status `systemctl status` shows."""
    return notify("STATUS=" + " ".join(text.splitlines()), env)


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between `WATCHDOG=1` pings (half of `WatchdogSec=`), or None without a watchdog.

    Honours `WATCHDOG_PID`: the setting is only for the process systemd started.
    """
    env = os.environ if env is None else env
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdecimal() or int(usec) == 0:
        return None
    if pid and (not pid.isdecimal() or int(pid) != os.getpid()):
        return None
    return int(usec) / 2_000_000

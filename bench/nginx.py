"""nginx as a yardstick for serving cached pictures: an unprivileged process on a loopback port.

Used by bench/serve.py. nginx comes from the Debian package (`apt-get install nginx`); it runs
with its own temporary config (one worker, `sendfile`, keep-alive, no access log), its pid file,
logs and temp folders in a folder of its own, and no system service. As root it is started as
`nobody`, serving a copy of the file from a folder that user can read. Does I/O.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CONFIG = """
daemon off;
worker_processes 1;
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    types {{ image/bmp bmp; }}
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {home}/www;
    }}
}}
"""


def binary() -> str | None:
    """The nginx executable, or None (the bench then says why it skips the column)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def _readable_by(path: Path, uid: int, gid: int) -> None:
    """Let `uid` into `path` and every folder above it (for nginx's `nobody` under root)."""
    os.chown(path, uid, gid)
    for parent in path.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


@contextmanager
def nginx(home: Path, files: dict[str, bytes], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """nginx serving `files` ({url path: bytes}) on 127.0.0.1:`port`, until the block ends."""
    exe = binary()
    if exe is None:
        raise FileNotFoundError("nginx")
    home.mkdir(parents=True)
    for rel, data in files.items():
        target = home / "www" / rel.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    conf = home / "nginx.conf"
    conf.write_text(CONFIG.format(home=home, port=port))
    user: dict[str, object] = {}
    if os.geteuid() == 0:  # never run it as root: drop to nobody before it starts
        nobody = pwd.getpwnam("nobody")
        for path in [home, *home.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        _readable_by(home, nobody.pw_uid, nobody.pw_gid)
        user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    cmd = [exe, "-p", str(home), "-c", str(conf), "-e", str(home / "error.log")]
    proc = subprocess.Popen(cmd, **user)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(30)

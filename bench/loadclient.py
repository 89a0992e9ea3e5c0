"""The load client of bench/serve.py and what it reads of /proc: threads with blocking sockets
fetching over keep-alive connections, and the CPU time of processes. Does I/O.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

from tests.kit.broker import USERS

_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


def _response(sock: socket.socket, scratch: memoryview) -> tuple[bytes, int]:
    """One response's head and body size; the body is read straight into `scratch`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("bench: the server closed the connection")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = _LENGTH.search(head)
    size = int(match.group(1)) if match else 0
    got = len(body)
    while got < size:  # one blocking call for the rest of the body, usually
        n = sock.recv_into(scratch[got:size], size - got, socket.MSG_WAITALL)
        if n == 0:
            raise SystemExit("bench: the server closed the connection mid-body")
        got += n
    return head, got


def _client(port: int, paths: list[str], auth: bool, sizes: list[int], retry_404: bool) -> None:
    """Fetch `paths` one after another over one keep-alive connection (blocking socket)."""
    extra = f"Authorization: Bearer {USERS['kitchen']}\r\n" if auth else ""
    scratch = memoryview(bytearray(4 << 20))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for path in paths:
            request = f"GET {path} HTTP/1.1\r\nHost: bench\r\n{extra}\r\n".encode()
            while True:
                sock.sendall(request)
                head, size = _response(sock, scratch)
                if retry_404 and head.startswith(b"HTTP/1.1 404"):
                    time.sleep(0.005)  # the manifest is still on its way
                    continue
                if not head.startswith(b"HTTP/1.1 200") or size == 0:
                    raise SystemExit(f"bench: unexpected answer {head[:200]!r}")
                sizes.append(size)
                break


def load(
    port: int, paths: list[str], clients: int, auth: bool, retry_404: bool = False
) -> tuple[float, list[int]]:
    """Seconds to fetch every path over `clients` keep-alive connections, and the body sizes.

    One thread per connection with blocking sockets: the load client shares the cores with
    what it measures, and this is about the cheapest way Python has to read HTTP responses.
    """
    shares = [paths[i::clients] for i in range(clients)]
    sizes: list[int] = []
    errors: list[BaseException] = []

    def run(share: list[str]) -> None:
        try:
            _client(port, share, auth, sizes, retry_404)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(share,)) for share in shares]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return elapsed, sizes


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc; just `pid` elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(entry.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.parent.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy() -> float:
    """CPU seconds every core of the machine has spent busy since boot (Linux /proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

"""The real frame app on CircuitPython's own VM, for tests and benchmarks. Does process, file and
network I/O.

`../shared/circuitpython/` (beside the checkout, as CI lays it out) holds `cp-unix32`, a 32-bit
CircuitPython 10.2.1 VM, its `mpy-cross`, and `cpsocketpool` (sockets with the board's
semantics). `bundle()` lays the app out exactly as `make bundle` does (with that compiler, or as
.py) and puts `tests/kit/board/hw.py` in the place of the one hardware module; `BoardFrame` runs
`code.py` in the VM at a given heap, as the board runs it, and reads what the stand-in prints
(`@@show`, `@@low`, ...: see tests/kit/board/hw.py). Killing the process is a power cut.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from PIL import Image

from tests.kit import ROOT
from tests.kit import framekit as kit
from tests.kit.broker import USERS, Mosquitto
from tests.kit.pictureserver import PictureServer
from tools import bundle as bundle_tool

TOOLS = ROOT.parent / "shared" / "circuitpython"
VM = TOOLS / "cp-unix32"
MPY_CROSS = TOOLS / "mpy-cross"
STAND_IN = Path(__file__).resolve().parent / "board" / "hw.py"
PICTURE = 154678  # a bmp8 picture, the format the tests publish

needs_vm = pytest.mark.skipif(
    not (os.access(VM, os.X_OK) and os.access(MPY_CROSS, os.X_OK)),
    reason=f"needs CircuitPython's VM and mpy-cross in {TOOLS} (the shared folder beside the "
    "checkout)",
)


def bundle(out: Path, compiled: bool = True) -> Path:
    """`make bundle` into `out` (with CircuitPython's mpy-cross when `compiled`), the hardware
    module replaced by the stand-in; returns `out`."""
    compiler = MPY_CROSS if compiled else None
    bundle_tool.build(out, compiler)
    frame = out / "frame"
    for old in frame.glob("hw.*"):
        old.unlink()
    if compiled:
        subprocess.run([str(MPY_CROSS), "-o", str(frame / "hw.mpy"), str(STAND_IN)], check=True)
    else:
        shutil.copy(STAND_IN, frame / "hw.py")
    return out


def card_bytes(pictures: int) -> int:
    """A card size that holds `pictures` bmp8 pictures beside the store's 1 MB reserve."""
    return (1 << 20) + pictures * PICTURE + PICTURE // 2


class BoardFrame:
    """`code.py` of a bundle, running in the VM on a folder as its SD card."""

    def __init__(self, app: Path, card: Path, settings: dict[str, str], heap: str = "120k") -> None:
        self.app, self.card, self.heap = app, card, heap
        self.control = card.parent / "control"
        card.parent.mkdir(parents=True, exist_ok=True)
        self.control.touch()
        self.env = {
            **os.environ,
            **settings,
            "MICROPYPATH": f".frozen:{app / 'lib'}:{TOOLS}",
            "TITANO_CARD": str(card),
            "TITANO_CONTROL": str(self.control),
        }
        self.lines: list[str] = []
        self.boots = 0
        self._lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None

    def limit_card(self, pictures: int) -> None:
        self.env["TITANO_CARD_BYTES"] = str(card_bytes(pictures))

    def start(self) -> BoardFrame:
        args = [str(VM), "-X", f"heapsize={self.heap}", "code.py"]
        self.proc = subprocess.Popen(
            args, cwd=self.app, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self.boots += 1
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        return self

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            with self._lock:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def power_cut(self) -> None:
        """SIGKILL: nothing of the app runs after it, as when the plug is pulled."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        self.power_cut()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def say(self, line: str) -> None:
        """A line for the stand-in's control file: `touch <x>`, `light <n>`, `wifi off|on`."""
        with open(self.control, "a") as f:
            f.write(line + "\n")

    def output(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def marks(self, kind: str) -> list[list[str]]:
        """The stand-in's `@@<kind>` lines, as their words after the kind."""
        tag = "@@" + kind
        return [line.split()[1:] for line in self.output() if line.split()[:1] == [tag]]

    def shown(self) -> list[tuple[str, int]]:
        """(path, size) of every picture drawn, in order."""
        return [(w[0], int(w[1])) for w in self.marks("show")]

    def lowest_free(self) -> int | None:
        """The least free heap seen at a watchdog feed, garbage included."""
        lows = [int(w[0]) for w in self.marks("low")]
        return min(lows) if lows else None

    def largest_block_at_boot(self) -> int | None:
        """Bytes of the largest free block at the first tick (`micropython.mem_info()`)."""
        for line in self.output():
            if "max free sz:" in line:
                return int(line.rsplit("max free sz:", 1)[1].split()[0]) * 16
        return None

    def crashed(self) -> list[str]:
        """What the VM printed that a healthy frame never prints: tracebacks, errors."""
        bad = ("Traceback", "Error", "unexpected error", "@@dog")
        return [line for line in self.output() if any(b in line for b in bad)]


def wait_until(
    done: Callable[[], bool], seconds: float = 30.0, frame: BoardFrame | None = None
) -> bool:
    """Poll `done` until it is true (True) or time is up (False); a dead VM ends the wait."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if done():
            return True
        if frame is not None and not frame.alive():
            return done()
        time.sleep(0.05)
    return done()


class SlowProxy:
    """A TCP proxy on loopback in front of `port` that sends answers in PIECE-byte pieces, a
    `delay` apart: a download then takes long enough to pull the plug in the middle of it."""

    PIECE = 8192

    def __init__(self, port: int, delay: float = 0.0) -> None:
        self.upstream, self.delay = port, delay
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:  # closed
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream), timeout=10)
            except OSError:
                client.close()  # the service is down: so is the proxy's answer
                continue
            threading.Thread(target=self._pump, args=(client, upstream, 0.0), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, delay: float | None) -> None:
        try:
            while data := src.recv(self.PIECE):
                dst.sendall(data)
                time.sleep(self.delay if delay is None else delay)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._server.close()


def picture() -> bytes:
    """A 480x320 8-bit BMP with a full palette: exactly the size the renderer's bmp8 is."""
    img = Image.new("P", (480, 320))
    img.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    img.paste(200, (0, 0, 240, 160))
    out = io.BytesIO()
    img.save(out, "BMP")
    data = out.getvalue()
    assert len(data) == PICTURE
    return data


def library(n: int, seed: int) -> dict[str, str]:
    """`n` picture ids (random UUIDs) with random versions."""
    rng = random.Random(seed)
    ids = (str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n))
    return {pid: f"{rng.getrandbits(32):08x}" for pid in ids}


class Library:
    """A frame's library published as the bridge publishes it (bridge.manifest, retained on a
    real Mosquitto), its pictures served by a plain picture server (the renderer's answers, one
    picture for every id: what is measured is the board, not the renderer)."""

    def __init__(self, broker: Mosquitto, n: int, seed: int = 1) -> None:
        self.server = PictureServer(USERS["kitchen"])
        self.pictures = library(n, seed)
        self.server.pictures = dict.fromkeys(self.pictures, picture())
        self.pub = kit.Publisher(broker.host, broker.port, "bridge", USERS["bridge"], "kitchen")
        self.pub.manifest(self.pictures, self.server.url)

    def drop(self, ids: Iterable[str]) -> None:
        """Take pictures out of the library and publish what changed."""
        for pid in ids:
            del self.pictures[pid]
        self.pub.manifest(self.pictures, self.server.url)

    def close(self) -> None:
        self.pub.close()
        self.server.close()

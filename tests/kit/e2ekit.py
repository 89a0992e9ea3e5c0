"""The whole pipeline on loopback for end-to-end tests: fake Immich, `python -m bridge` and
`python -m renderer` as their own processes, a real Mosquitto, and the frame app in-process on
the simulator so a test can look at its card and screen. Does process, file and network I/O.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import requests
from PIL import Image

from tests.kit import ROOT
from tests.kit import framekit as kit
from tests.kit.broker import USERS, Mosquitto, free_port
from tests.kit.fakes.immich import FakeImmich
from tests.kit.mqttc import Collector
from titano_app.frame import card as frame_card
from titano_app.frame.app import App
from titano_app.sim.device import SimDevice
from tools import broker as demo_broker

FRAME = "kitchen"
URL_KEY = "e2e-url-key-4c1f9b"
CAST_TOKEN = "e2e-cast-token-8d2a"


def _config(
    broker: Mosquitto,
    fake: FakeImmich,
    http_port: int,
    cache: Path,
    metrics_port: int | None,
    public_port: int | None = None,
    frame_extra: str = "",
) -> str:
    metrics = f"127.0.0.1:{metrics_port}" if metrics_port else ""
    public = public_port or http_port
    return (
        f"immich: {{url: '{fake.url}', api_key: '{fake.api_key}', timeout: 5}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: bridge, "
        f"password: {USERS['bridge']}, homeassistant_password: {USERS['homeassistant']}}}\n"
        f"renderer: {{listen: '127.0.0.1:{http_port}', public_url: 'http://127.0.0.1:{public}',"
        f" cache_dir: '{cache}', url_key: {URL_KEY}, mqtt_password: {USERS['renderer']},"
        f" cast_token: {CAST_TOKEN}}}\n"
        f"bridge: {{poll_interval: 5, full_scan_interval: 5, metrics_listen: '{metrics}'}}\n"
        f"frames:\n  {FRAME}:\n    secret: {USERS[FRAME]}\n    sources: [{{favorites: true}}]\n"
        "    image: {format: bmp8, fit: blur, pair_portraits: false}\n"
        + "".join(f"    {line}\n" for line in frame_extra.splitlines())
    )


class Services:
    """Fake Immich, and the bridge and the renderer as their own processes. Frames download
    from `public_port` when given (a proxy in front of the renderer), else from the renderer.
    `frame_extra` is YAML added to the frame's config (e.g. `long_press: like`); without
    `bridge_process` the test runs the bridge itself, in-process on a clock it moves
    (tests/kit/bridgekit.py), from `self.config`."""

    def __init__(
        self,
        broker: Mosquitto,
        tmp: Path,
        fake: FakeImmich | None = None,
        metrics: bool = False,
        public_port: int | None = None,
        frame_extra: str = "",
        bridge_process: bool = True,
    ) -> None:
        self.broker, self.tmp = broker, tmp
        self.fake = (fake or FakeImmich()).start()
        self.http_port = free_port()
        self.metrics_port = free_port() if metrics else None
        self.config = tmp / "config.yaml"
        self.config.write_text(
            _config(
                broker, self.fake, self.http_port, tmp / "cache", self.metrics_port, public_port,
                frame_extra,
            ),
        )  # fmt: skip
        self.procs = [self._start("renderer")]
        if bridge_process:
            self.procs.append(self._start("bridge"))
        try:
            demo_broker.wait_port(self.http_port, self.procs[0], "renderer")
        except BaseException:
            self.close()  # nothing left running into the tests that follow
            raise

    def _start(self, name: str) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", name, "--config", str(self.config)]
        with open(self.tmp / f"{name}.log", "ab") as log:  # the process keeps its own handle
            return subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=log)

    def stop_renderer(self) -> None:
        self.procs[0].terminate()
        self.procs[0].wait(timeout=15)

    def start_renderer(self) -> None:
        self.procs[0] = self._start("renderer")
        demo_broker.wait_port(self.http_port, self.procs[0], "renderer")

    def logs(self) -> str:
        found = [self.tmp / f"{n}.log" for n in ("renderer", "bridge")]
        return "".join(p.read_text() for p in found if p.exists())

    def close(self) -> None:
        for p in self.procs:
            p.terminate()
            p.wait(timeout=15)
        self.fake.stop()


class World(Services):
    """The services and the frame app in-process on the simulator."""

    def __init__(
        self,
        broker: Mosquitto,
        tmp: Path,
        fake: FakeImmich | None = None,
        metrics: bool = False,
        frame_extra: str = "",
        bridge_process: bool = True,
    ) -> None:
        super().__init__(
            broker, tmp, fake, metrics, frame_extra=frame_extra, bridge_process=bridge_process
        )
        card = tmp / "card"
        card.mkdir()
        # the PNG then shows the panel undimmed
        frame_card.save_settings(str(card), {"brightness": 100})
        settings = kit.frame_settings(FRAME, USERS[FRAME], broker.port)
        self.device = SimDevice(settings, card, tmp / "screen.png")
        self.app = App(self.device, kit.Clock())
        self.watch = Collector(broker, "homeassistant")
        assert self.watch.wait_connected()
        self.watch.subscribe(f"titanoframe/{FRAME}/state")
        self.watch.subscribe(f"titanoframe/{FRAME}/event")

    def on_card(self) -> set[str]:
        return kit.card_pictures(self.tmp / "card")

    def rendered(self, picture_id: str) -> Image.Image:
        url = f"http://127.0.0.1:{self.http_port}/v1/frames/{FRAME}/pictures/{picture_id}.bmp"
        r = requests.get(url, headers={"Authorization": "Bearer " + USERS[FRAME]}, timeout=30)
        r.raise_for_status()
        return Image.open(io.BytesIO(r.content)).convert("RGB")

    def last_state(self) -> dict[str, object]:
        with self.watch.lock:
            states = [json.loads(p) for t, p, _ in self.watch.messages if t.endswith("/state")]
        return states[-1] if states else {}

    def events(self, kind: str | None = None) -> list[dict[str, object]]:
        """Events on the frame's topic (the frame's, and the bridge's answers), oldest first."""
        with self.watch.lock:
            found = [json.loads(p) for t, p, _ in self.watch.messages if t.endswith("/event")]
        return [e for e in found if kind is None or e.get("event") == kind]

    def close(self) -> None:
        self.watch.close()
        super().close()

"""A rig for the removal brake: the fake Immich, the renderer as its own process, the bridge
in-process on a mocked clock (`bridgekit.Bridge`), and simulated frames in-process whose cards a
test can count. Does process, file and network I/O."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from common.config import Config, load_config
from tests.kit import ROOT
from tests.kit import framekit as kit
from tests.kit.bridgekit import Bridge
from tests.kit.broker import USERS, Mosquitto, free_port
from tests.kit.fakes.immich import FakeImmich
from titano_app.frame import card as frame_card
from titano_app.frame.app import App
from titano_app.sim.device import SimDevice
from tools import broker as demo_broker

FRAMES = ("kitchen", "hall")
URL_KEY = "brake-url-key-2e7a"


def config_text(broker: Mosquitto, fake: FakeImmich, http_port: int, tmp: Path,
                sources: str = "[{favorites: true}]") -> str:  # fmt: skip
    frames = "".join(
        f"  {f}:\n    secret: {USERS[f]}\n    sources: {sources}\n    image: {{format: bmp8}}\n"
        for f in FRAMES
    )
    return (
        f"immich: {{url: '{fake.url}', api_key: '{fake.api_key}', timeout: 5}}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}, username: bridge, "
        f"password: {USERS['bridge']}, homeassistant_password: {USERS['homeassistant']}}}\n"
        f"renderer: {{listen: '127.0.0.1:{http_port}', public_url: 'http://127.0.0.1:{http_port}',"
        f" cache_dir: '{tmp / 'cache'}', url_key: {URL_KEY}, mqtt_password: {USERS['renderer']}}}\n"
        "bridge: {poll_interval: 30, full_scan_interval: 3600, metrics_listen: ''}\n"
        f"frames:\n{frames}"
    )


class Rig:
    """Renderer process, frames on the simulator; `bridge(**options)` starts an in-process one."""

    def __init__(self, broker: Mosquitto, fake: FakeImmich, tmp: Path) -> None:
        self.broker, self.fake, self.tmp = broker, fake, tmp
        (tmp / "cache").mkdir()
        self.http_port = free_port()
        self.path = tmp / "config.yaml"
        self.write_config()
        self.renderer = self._renderer()
        self.apps: dict[str, App] = {}
        for frame in FRAMES:
            card = tmp / f"card-{frame}"
            card.mkdir()
            frame_card.save_settings(str(card), {"brightness": 100})
            settings = kit.frame_settings(frame, USERS[frame], broker.port)
            device = SimDevice(settings, card, tmp / f"screen-{frame}.png")
            self.apps[frame] = App(device, kit.Clock())
        self.publisher = kit.Publisher(
            broker.host, broker.port, broker.alias("homeassistant"), USERS["homeassistant"],
            FRAMES[0],
        )  # fmt: skip

    def _renderer(self) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "renderer", "--config", str(self.path)]
        with open(self.tmp / "renderer.log", "ab") as log:
            proc = subprocess.Popen(args, cwd=ROOT, stdout=log, stderr=log)
        demo_broker.wait_port(self.http_port, proc, "renderer")
        return proc

    def restart_renderer(self) -> None:
        """The renderer reads its config at start (folder sources, say): start it again."""
        self.renderer.terminate()
        self.renderer.wait(timeout=15)
        self.renderer = self._renderer()

    def write_config(self, sources: str = "[{favorites: true}]") -> None:
        self.path.write_text(config_text(self.broker, self.fake, self.http_port, self.tmp, sources))

    def config(self, **bridge: Any) -> Config:
        cfg = load_config(self.path)
        return replace(cfg, bridge=replace(cfg.bridge, **bridge))

    def bridge(self, **bridge: Any) -> Bridge:
        b = Bridge(self.config(**bridge))
        b.step()  # the first full walk
        return b

    def card(self, frame: str) -> set[str]:
        return {p.name for p in kit.card_files(self.tmp / f"card-{frame}")}

    def sync(self, frame: str, done: Any, seconds: float = 60.0) -> bool:
        """Tick the frame until `done(card)` holds."""
        return kit.tick_until(self.apps[frame], lambda: done(self.card(frame)), seconds)

    def settle(self) -> None:
        """Every frame has acted on everything the broker sent it before now."""
        for frame, app in self.apps.items():
            self.publisher.prefix = f"titanoframe/{frame}/"
            assert kit.barrier(app, self.publisher), f"{frame} did not take its messages"

    def log(self) -> str:
        return (self.tmp / "renderer.log").read_text(errors="replace")

    def close(self) -> None:
        self.publisher.close()
        self.renderer.terminate()
        self.renderer.wait(timeout=15)

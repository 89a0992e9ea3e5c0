"""Building blocks for running the simulated frame in-process (tests, benchmarks): picture
files, manifests published the way the bridge publishes them, a clock that can jump ahead, and
a loop that ticks the app until something is true. Does file and network I/O.
"""

from __future__ import annotations

import io
import random
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from PIL import Image

from common import manifest as bridge_manifest
from titano_app.frame.app import App
from titano_app.frame.store import Store
from titano_app.sim.device import SimDevice


def picture_bytes(seed: int) -> bytes:
    """A 480x320 8-bit BMP of a simple, distinct pattern."""
    rnd = random.Random(seed)
    colours = [tuple(rnd.randrange(256) for _ in range(3)) for _ in range(4)]
    img = Image.new("RGB", (480, 320), colours[0])
    img.paste(colours[1], (0, 0, 240, 160))
    img.paste(colours[2], (240, 160, 480, 320))
    img.paste(colours[3], (200, 120, 280, 200))
    out = io.BytesIO()
    img.quantize(256).save(out, "BMP")
    return out.getvalue()


def picture_id(n: int) -> str:
    return str(uuid.UUID(int=random.Random(n).getrandbits(128), version=4))


class Clock:
    """Monotonic milliseconds that tests can move forward (slide intervals, retries)."""

    def __init__(self) -> None:
        self.offset = 0

    def __call__(self) -> int:
        return time.monotonic_ns() // 1000000 + self.offset

    def advance(self, ms: int) -> None:
        self.offset += ms


class Publisher:
    """Publishes a frame's manifest as the bridge does: changed pages, summary, cleared pages."""

    def __init__(self, host: str, port: int, user: str, password: str, frame: str) -> None:
        self.prefix = f"titanoframe/{frame}/"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"kit-{time.time_ns()}")
        self.client.username_pw_set(user, password)
        self.client.connect(host, port)
        self.client.loop_start()
        self.pages: dict[str, bytes] = {}
        self.published: list[str] = []
        self.last: bridge_manifest.Manifest | None = None

    def manifest(self, pictures: dict[str, str], url: str, fmt: str = "bmp8") -> None:
        m = bridge_manifest.build(pictures, None, url, fmt, int(time.time()))
        sent = []
        for shard, page in m.pages.items():
            if self.pages.get(shard) != page:
                topic = self.prefix + "manifest/" + shard
                self.published.append(topic)
                sent.append(self.client.publish(topic, page, qos=1, retain=True))
        for info in sent:  # every page is on the broker before the summary names it
            info.wait_for_publish(5)
        self._send(self.prefix + "manifest", m.summary)
        for shard in set(self.pages) - set(m.pages):
            self._send(self.prefix + "manifest/" + shard, b"")
        self.pages = dict(m.pages)
        self.last = m

    def command(self, name: str, payload: str = "") -> None:
        self._send(self.prefix + "cmd/" + name, payload.encode(), retain=False)

    def _send(self, topic: str, payload: bytes, retain: bool = True) -> None:
        self.published.append(topic)
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def tick_until(app: App, done: Callable[[], bool], seconds: float = 20.0) -> bool:
    """Tick the app until `done()` (True) or the time is up (False)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.tick(app.clock())
        if done():
            return True
        if not app.link.connected:
            time.sleep(0.01)
    return False


def barrier(app: App, publisher: Publisher, seconds: float = 20.0) -> bool:
    """Tick `app` until it has acted on every message the broker sent it before now (False when
    the time is up).

    The marker is a command with an empty payload, which the app ignores (it is how clearing a
    retained command looks), published last: the broker hands the app its messages in the order
    it took them in, so once the app has taken the marker from its inbox it has taken them all.
    """
    name = f"barrier-{uuid.uuid4().hex[:8]}"
    topic = publisher.prefix + "cmd/" + name
    client = app.link._client
    deliver = client.on_message
    arrived: list[str] = []

    def watching(c: object, t: str, payload: bytes) -> None:
        if t == topic:
            arrived.append(t)
        deliver(c, t, payload)

    client.on_message = watching
    try:
        publisher.command(name)
        return tick_until(app, lambda: bool(arrived) and topic not in app.link.inbox, seconds)
    finally:
        client.on_message = deliver


def frame_settings(frame: str, secret: str, port: int) -> dict[str, str]:
    return {"FRAME_ID": frame, "FRAME_SECRET": secret, "MQTT_HOST": "127.0.0.1",
            "MQTT_PORT": str(port)}  # fmt: skip


def make_app(device: SimDevice, clock: Clock | None = None) -> App:
    return App(device, clock or Clock())


def card_pictures(card: Path) -> set[str]:
    """The picture ids on a simulated card."""
    return {p.name.split(".")[0] for p in card_files(card)}


def card_files(card: Path) -> list[Path]:
    """The picture files on a simulated card, in the store's layout."""
    return list((card / "p").glob("*/*/*.bmp"))


def card_file(card: Path, picture_id: str, version: str) -> Path:
    """Where the store keeps a picture on a simulated card; its folders are created."""
    path = Path(Store(str(card)).path(picture_id, version))
    path.parent.mkdir(parents=True, exist_ok=True)
    return path

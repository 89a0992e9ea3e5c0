"""Casting an image over the renderer's HTTP API, against a real Mosquitto and the renderer
in-process on loopback (tests/kit/rendererkit.py): what a good cast publishes and serves, and
that every hostile cast is a 4xx with a JSON reason that renders nothing and publishes nothing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from PIL import Image

from common.config import parse_config
from renderer import castrules
from renderer.cast import CastArea, Held
from tests.kit import rendererkit
from tests.kit.broker import Mosquitto, free_port
from tests.kit.fakes.immich import FakeImmich
from tests.kit.mqttc import Collector
from tests.kit.rendererkit import BASE, BMP8_SIZE, BMP16_SIZE, RendererRig, bmp_ok

fake = rendererkit.fake

TOKEN = "cast-token-renderer-7d1e"
HALL_TOKEN = "cast-token-hall-93aa"


def jpeg(size: tuple[int, int] = (640, 480), colour: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


def png(size: tuple[int, int] = (300, 200)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height pixels, in a few hundred bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


class CastRig:
    """Broker, fake Immich and the renderer with casting on, and an observer of every cast."""

    def __init__(self, broker: Mosquitto, fake: FakeImmich, tmp: Path, **renderer: Any) -> None:
        renderer.setdefault("cast_token", TOKEN)
        doc = rendererkit.rig_config(broker, fake, tmp, free_port(), **renderer)
        doc["frames"]["hall"]["cast_token"] = HALL_TOKEN
        self.rig = RendererRig(broker, fake, tmp, parse_config(doc, {}, tmp))
        self.port = self.rig.port
        self.watch = Collector(broker, "homeassistant")
        assert self.watch.wait_connected()
        self.watch.subscribe(f"{BASE}/+/cast")

    def cast(
        self,
        frame: str,
        body: bytes,
        token: str | None = TOKEN,
        content_type: str | None = "image/jpeg",
        **query: str,
    ) -> requests.Response:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        url = f"http://127.0.0.1:{self.port}/v1/frames/{frame}/cast"
        return requests.post(url, data=body, headers=headers, params=query, timeout=30)

    def announced(self) -> list[tuple[str, dict[str, Any], bool]]:
        with self.watch.lock:
            return [(t, json.loads(p), r) for t, p, r in self.watch.messages]

    def wait_announced(self, n: int) -> bool:
        return self.watch.wait_for(lambda m: len(m) >= n, 10)

    def close(self) -> None:
        self.watch.close()
        self.rig.close()


@pytest.fixture
def cast_rig(broker: Mosquitto, fake: FakeImmich, tmp_path: Path) -> Iterator[CastRig]:
    r = CastRig(broker, fake, tmp_path, cast_per_minute=20, cast_max_mb=1)
    yield r
    r.close()


def test_a_cast_is_rendered_to_the_frame_profile_and_announced(cast_rig: CastRig) -> None:
    r = cast_rig.cast("kitchen", jpeg(), seconds="45")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["frame"] == "kitchen" and body["seconds"] == 45 and body["bytes"] == BMP16_SIZE
    assert cast_rig.wait_announced(1)
    [(topic, doc, retained)] = cast_rig.announced()
    assert topic == f"{BASE}/kitchen/cast" and not retained
    assert doc == {**doc, "v": 1, "id": body["id"], "seconds": 45, "format": "bmp16"}
    assert doc["bytes"] == BMP16_SIZE
    # the frame fetches it with its secret, or anyone with the signed URL until it expires
    got = requests.get(doc["url"], timeout=10)  # the signed URL alone
    assert got.status_code == 200 and got.headers["Content-Type"] == "image/bmp"
    picture = bmp_ok(got.content, BMP16_SIZE, 16)
    red = picture.getpixel((240, 160))  # fit `blur`: the red image fills the middle
    assert isinstance(red, tuple) and abs(red[0] - 200) < 10 and red[1:] == (40, 40)
    bare = urlsplit(doc["url"])._replace(query="").geturl()
    assert requests.get(bare, timeout=10).status_code == 401
    headers = rendererkit.bearer("kitchen")
    assert requests.get(bare, headers=headers, timeout=10).status_code == 200
    assert requests.get(bare, headers=rendererkit.bearer("hall"), timeout=10).status_code == 401
    # never in the picture cache, nor in the slideshow's manifest
    assert cast_rig.rig.service.cache.total_bytes == 0
    assert cast_rig.rig.service.roster.count("kitchen") == 0


def test_the_frame_format_and_its_own_token(cast_rig: CastRig) -> None:
    """`hall` renders bmp8 and takes its own token only; a PNG works as a JPEG does."""
    assert cast_rig.cast("hall", png(), token=TOKEN, content_type="image/png").status_code == 401
    r = cast_rig.cast("hall", png(), token=HALL_TOKEN, content_type=None)
    assert r.status_code == 200, r.text
    assert r.json()["bytes"] == BMP8_SIZE and r.json()["seconds"] == castrules.DEFAULT_SECONDS
    assert cast_rig.wait_announced(1)
    [(topic, doc, _)] = cast_rig.announced()
    assert topic == f"{BASE}/hall/cast" and doc["format"] == "bmp8"


HOSTILE: list[tuple[str, dict[str, Any], int, str]] = [
    ("unknown frame", {"frame": "garage"}, 404, "unknown_frame"),
    ("no token", {"token": None}, 401, "unauthorized"),
    ("wrong token", {"token": "guess"}, 401, "unauthorized"),
    ("seconds out of range", {"seconds": "3600"}, 400, "bad_seconds"),
    ("seconds not a number", {"seconds": "1e3"}, 400, "bad_seconds"),
    ("too big", {"body": b"\xff\xd8\xff" + bytes(1 << 20)}, 413, "too_large"),
    ("pixel bomb over Pillow's limit", {"body": png_bomb(20000, 20000)}, 413, "too_many_pixels"),
    ("pixel bomb under Pillow's limit", {"body": png_bomb(6000, 5000)}, 413, "too_many_pixels"),
    ("junk bytes", {"body": b"this is not an image at all", "type": None}, 415, "unsupported_type"),
    ("junk after a JPEG signature", {"body": b"\xff\xd8\xff" + b"junk" * 500}, 400, "bad_image"),
    ("wrong type", {"body": b"GIF89a" + bytes(100), "type": "image/gif"}, 415, "unsupported_type"),
    ("a PNG sent as JPEG", {"body": png(), "type": "image/jpeg"}, 415, "unsupported_type"),
    ("empty body", {"body": b""}, 400, "empty_body"),
]


def test_hostile_casts_are_refused_and_publish_nothing(cast_rig: CastRig) -> None:
    for what, case, status, code in HOSTILE:
        r = cast_rig.cast(
            case.get("frame", "kitchen"),
            case.get("body", jpeg()),
            token=case.get("token", TOKEN),
            content_type=case.get("type", "image/png" if case.get("body", b"")[:1] == b"\x89"
                                  else "image/jpeg"),
            **({"seconds": case["seconds"]} if "seconds" in case else {}),
        )  # fmt: skip
        assert (r.status_code, r.json().get("error")) == (status, code), (what, r.text)
        assert r.json()["detail"], what
    # a good cast last: the broker delivers in order, so anything published before it is here
    assert cast_rig.cast("kitchen", jpeg()).status_code == 200
    assert cast_rig.wait_announced(1)
    assert len(cast_rig.announced()) == 1
    assert cast_rig.rig.metric('casts_refused_total{code="unauthorized"}') == 2
    assert cast_rig.rig.metric('casts_total{frame="kitchen"}') == 1


def test_casts_over_the_rate_are_429(broker: Mosquitto, fake: FakeImmich, tmp_path: Path) -> None:
    rig = CastRig(broker, fake, tmp_path, cast_per_minute=2)
    try:
        assert [rig.cast("kitchen", jpeg()).status_code for _ in range(2)] == [200, 200]
        r = rig.cast("kitchen", jpeg())
        assert (r.status_code, r.json()["error"]) == (429, "rate_limited")
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        # per frame: the hall still takes one
        assert rig.cast("hall", jpeg(), token=HALL_TOKEN).status_code == 200
        assert rig.wait_announced(3)
        assert [t.rsplit("/", 2)[1] for t, _, _ in rig.announced()] == ["kitchen"] * 2 + ["hall"]
    finally:
        rig.close()


def test_casting_is_off_for_a_frame_without_a_token(
    broker: Mosquitto, fake: FakeImmich, tmp_path: Path
) -> None:
    rig = CastRig(broker, fake, tmp_path, cast_token=None)
    try:
        r = rig.cast("kitchen", jpeg(), token="anything")
        assert (r.status_code, r.json()["error"]) == (403, "cast_disabled")
        assert rig.cast("hall", jpeg(), token=HALL_TOKEN).status_code == 200
        assert rig.wait_announced(1)
        assert [t for t, _, _ in rig.announced()] == [f"{BASE}/hall/cast"]
    finally:
        rig.close()


def test_only_the_last_casts_are_kept(cast_rig: CastRig) -> None:
    ids = [cast_rig.cast("kitchen", jpeg()).json()["id"] for _ in range(castrules.KEEP + 1)]
    area = cast_rig.rig.config.renderer.cache_dir / "cast" / "kitchen"
    assert {p.stem for p in area.iterdir()} == set(ids[1:])
    url = f"http://127.0.0.1:{cast_rig.port}/v1/frames/kitchen/casts/{ids[0]}.bmp"
    gone = requests.get(url, headers=rendererkit.bearer("kitchen"), timeout=10)
    assert (gone.status_code, gone.json()["error"]) == (404, "no_such_cast")


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_documented_curl_recipe(broker: Mosquitto, fake: FakeImmich, tmp_path: Path) -> None:
    """docs/deploy.md's shell_command: the token from a header file, a snapshot of a few MB
    (curl then waits for `100 Continue`), and `--fail` turning a refusal into an exit code."""
    rig = CastRig(broker, fake, tmp_path)
    try:
        header = tmp_path / "titanoframe-cast.header"
        header.write_text(f"Authorization: Bearer {TOKEN}\n")
        snapshot = tmp_path / "doorbell-cast.jpg"
        noise = Image.frombytes("RGB", (1400, 1000), os.urandom(1400 * 1000 * 3))
        noise.save(snapshot, "JPEG", quality=95)
        assert snapshot.stat().st_size > 1 << 20
        url = f"http://127.0.0.1:{rig.port}/v1/frames/kitchen/cast?seconds=30"
        args = ["curl", "--fail", "--silent", "--show-error", "--max-time", "20",
                "-H", f"@{header}", "-H", "Content-Type: image/jpeg",
                "--data-binary", f"@{snapshot}"]  # fmt: skip
        done = subprocess.run([*args, url], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["seconds"] == 30
        assert rig.wait_announced(1)
        header.write_text("Authorization: Bearer wrong\n")
        refused = subprocess.run([*args, url], capture_output=True, text=True, check=False)
        assert refused.returncode == 22 and "401" in refused.stderr
        assert len(rig.announced()) == 1
    finally:
        rig.close()


def test_the_cast_area_forgets_a_cast_when_its_url_expires(tmp_path: Path) -> None:
    area = CastArea(tmp_path / "cast")
    area.reset()
    cast_id, path = area.new_path("kitchen")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"BM")
    area.add(cast_id, Held("kitchen", path, 1000.0), 900.0)
    assert area.find("hall", cast_id, 999.0) is None  # another frame's cast
    assert area.find("kitchen", cast_id, 999.0) == path
    assert area.find("kitchen", cast_id, 1001.0) is None
    assert not path.exists() and area.find("kitchen", cast_id, 999.0) is None
    area.reset()  # a restart: nothing of an earlier run stays
    assert list((tmp_path / "cast").iterdir()) == []

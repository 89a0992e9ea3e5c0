"""No secret leaves the place it belongs, over a full end-to-end run.

Every secret is distinctive (the Immich API key, every MQTT password, the frame secret, the URL
signing key). The run exercises the happy path and the error paths that are most tempted to echo
a credential — a wrong frame secret, a secret in `?token=`, an Immich outage, a rejected API key,
a bad command — while a `#` subscriber records all broker traffic. Then every MQTT topic and
payload, every HTTP response (bodies and headers), every daemon log and the broker's log are
searched for each secret value.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import requests

from tests.kit import framekit as kit
from tests.kit.broker import USERS, Mosquitto
from tests.kit.e2ekit import FRAME, URL_KEY, World
from tests.kit.fakes.immich import FakeImmich
from tests.kit.mqttc import Collector, publish

IMMICH_KEY = "immich-api-key-9d2e71c4b8"
SECRETS = {"immich api key": IMMICH_KEY, "url key": URL_KEY} | {
    f"mqtt password of {user}": password for user, password in USERS.items()
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto"),
]


def _http(url: str, **kw: object) -> str:
    r = requests.get(url, timeout=30, **kw)  # type: ignore[arg-type]
    return f"{r.status_code} {dict(r.headers)} {r.content.decode('latin-1')}"


def _exercise_http(world: World) -> list[str]:
    base = f"http://127.0.0.1:{world.http_port}"
    pictures = f"{base}/v1/frames/{FRAME}/pictures"
    shown = world.app.show.picture
    seen = [
        _http(f"{base}/healthz"),
        _http(f"{base}/metrics"),
        _http(f"{pictures}/{shown}.bmp", headers={"Authorization": "Bearer wrong-secret"}),
        _http(f"{pictures}/{shown}.bmp?token={USERS[FRAME]}"),
        _http(f"{pictures}/{shown}.jpg?token={USERS[FRAME]}"),
        _http(f"{pictures}/00000000-0000-4000-8000-000000000000.bmp?token={USERS[FRAME]}"),
        _http(f"{pictures}/{shown}.jpg?exp=1&sig=00"),
    ]
    metrics = f"http://127.0.0.1:{world.metrics_port}"
    seen += [_http(f"{metrics}/metrics"), _http(f"{metrics}/healthz")]
    return seen


def test_no_secret_appears_in_traffic_responses_or_logs(
    broker: Mosquitto, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    spy = Collector(broker, "bridge")
    assert spy.wait_connected()
    spy.subscribe("titanoframe/#")
    spy.subscribe("homeassistant/#")
    world = World(broker, tmp_path, fake=FakeImmich(api_key=IMMICH_KEY), metrics=True)
    try:
        fake, app = world.fake, world.app
        first, _ = fake.add_favorites(2)
        assert kit.tick_until(app, lambda: len(world.on_card()) == 2, 60), world.logs()
        assert kit.tick_until(app, lambda: app.show.picture is not None, 10)
        publish(broker, "homeassistant", "homeassistant/status", "online")
        publish(broker, "homeassistant", f"titanoframe/{FRAME}/cmd/brightness", "250")
        publish(broker, "homeassistant", f"titanoframe/{FRAME}/cmd/next", "")
        kit.tick_until(app, lambda: False, 2)
        responses = _exercise_http(world)
        # Immich fails while the bridge polls: a rejected key, then an outage.
        fake.fail_next(2, 401, "/api/search/metadata")
        fake.edit(first)
        assert kit.tick_until(app, lambda: "Invalid API key" in world.logs(), 30), world.logs()
        fake.fail_next(2, 500)
        fake.add_favorites(1)
        assert kit.tick_until(app, lambda: "500" in world.logs(), 30), world.logs()
        assert kit.tick_until(app, lambda: len(world.on_card()) == 3, 60), world.logs()
    finally:
        world.close()
        spy.close()
    captured = capfd.readouterr()
    with spy.lock:
        traffic = [f"{t} {p.decode('latin-1')}" for t, p, _ in spy.messages]
    assert any("/manifest" in m for m in traffic) and any("/state" in m for m in traffic)
    # both daemons log their effective config, and the renderer every picture request (path only)
    assert world.logs().count("effective config: {") == 2
    assert f"GET /v1/frames/{FRAME}/pictures/" in world.logs()
    corpus = {
        "mqtt traffic": "\n".join(traffic),
        "http responses": "\n".join(responses),
        "daemon logs": world.logs(),
        "broker log": broker.log(),
        "frame output": captured.out + captured.err,
    }
    leaks = [
        f"{name} in {where}"
        for name, secret in SECRETS.items()
        for where, text in corpus.items()
        if secret in text
    ]
    assert leaks == []

"""The bridge as a service: start-up checks, schedules on an injected clock, retained commands
cleared, folder sources, metrics, and `python -m bridge run` as systemd runs it (READY,
WATCHDOG, SIGTERM → offline and exit 0), and the manifest pages held once after a restart."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bridge.mqtt import MqttLink, MqttTimeout
from bridge.service import Service, main
from bridge.startup import StartupError
from common.config import MqttConfig, ScheduleEntry, Source
from common.folderids import folder_asset_id
from tests.kit import ROOT
from tests.kit.bridgekit import BASE, Bridge, Observer, config, frame, manifest_of, retained
from tests.kit.broker import USERS, Mosquitto, free_port
from tests.kit.fakes.immich import FakeImmich
from tests.kit.mqttc import publish

CMD = f"{BASE}/kitchen/cmd"


@pytest.fixture
def fake() -> Iterator[FakeImmich]:
    with FakeImmich() as f:
        yield f


def test_missing_scopes_are_named_and_stop_the_start(
    broker: Mosquitto, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeImmich(permissions=("asset.read", "asset.view", "tag.read")) as fake:
        sources = (Source("album", "Family"), Source("memories", True), Source("tag", "x"))
        cfg = config(broker, fake, frames=[frame("kitchen", sources)])
        with pytest.raises(StartupError) as err:
            Service(cfg).start(datetime.now(UTC))
        text = str(err.value)
        assert "album.read (needed by frames.kitchen.sources: album 'Family')" in text
        assert "memory.read (needed by frames.kitchen.sources: memories)" in text
        assert "tag.read" not in text and "asset.read" not in text
        with caplog.at_level(logging.ERROR):
            assert main(cfg) == 1
        assert "album.read" in caplog.text
    assert retained(broker) == {}  # it never went online


def test_rejected_api_key_stops_the_start(broker: Mosquitto, fake: FakeImmich) -> None:
    cfg = config(broker, fake)
    assert cfg.immich is not None
    bad = cfg.__class__(**{**cfg.__dict__, "immich": cfg.immich.__class__(fake.url, "wrong")})
    with pytest.raises(StartupError, match="Immich refused the API key"):
        Service(bad).start(datetime.now(UTC))


def test_wrong_broker_password_stops_the_start(broker: Mosquitto, fake: FakeImmich) -> None:
    cfg = config(broker, fake)
    bad = cfg.__class__(**{**cfg.__dict__, "mqtt": cfg.mqtt.__class__(
        host=broker.host, port=broker.port, password="nope")})  # fmt: skip
    assert main(bad) == 1


def test_metrics_port_in_use_stops_the_start(broker: Mosquitto, fake: FakeImmich) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        cfg = config(broker, fake, metrics_listen=listen)
        with pytest.raises(StartupError, match=f"bridge.metrics_listen '{listen}'"):
            Service(cfg).start(datetime.now(UTC))
        assert main(cfg) == 1
    assert retained(broker) == {}  # it never went online


def test_schedules_fire_at_local_time(broker: Mosquitto, fake: FakeImmich) -> None:
    weekdays = ("mon", "tue", "wed", "thu", "fri")
    entries = (
        ScheduleEntry((23, 0), (), (("display", "OFF"),)),
        ScheduleEntry((7, 0), weekdays, (("display", "ON"), ("brightness", "80"))),
    )
    cfg = config(
        broker, fake, frames=[frame("kitchen", schedule=entries)], timezone="Europe/Berlin"
    )
    # Sunday 23 Nov 2025, 21:30 UTC = 22:30 in Berlin.
    bridge = Bridge(cfg, now=datetime(2025, 11, 23, 21, 30, tzinfo=UTC))
    obs = Observer(broker, f"{CMD}/#", user="kitchen")  # what the frame receives
    bridge.tick(29 * 60)  # 22:59
    assert obs.take() == []
    bridge.tick(60)  # 23:00
    assert obs.take() == [(f"{CMD}/display", b"OFF", False)]
    bridge.tick(8 * 3600 - 1)  # Monday 06:59:59
    assert obs.take() == []
    bridge.tick(1)  # 07:00
    assert obs.take() == [(f"{CMD}/display", b"ON", False), (f"{CMD}/brightness", b"80", False)]
    assert retained(broker, f"{CMD}/#") == {}
    assert bridge.service.metrics.get("schedule_commands_total", frame="kitchen") == 3
    bridge.close()


def test_retained_commands_are_cleared(broker: Mosquitto, fake: FakeImmich) -> None:
    publish(broker, "homeassistant", f"{CMD}/brightness", "30", retain=True)
    publish(broker, "homeassistant", f"{BASE}/hall/cmd/bogus", "1", retain=True)
    bridge = Bridge(config(broker, fake))
    assert bridge.pump(lambda: retained(broker, f"{BASE}/+/cmd/#") == {})
    # One sent by mistake while the bridge runs is cleared too; normal commands are left alone.
    obs = Observer(broker, f"{CMD}/#", user="kitchen")
    publish(broker, "homeassistant", f"{CMD}/next", "", retain=False)
    publish(broker, "homeassistant", f"{CMD}/pause", "ON", retain=True)
    assert obs.wait_for(lambda m: (f"{CMD}/pause", b"", True) in m)
    assert retained(broker, f"{CMD}/#") == {}
    assert bridge.service.metrics.get("retained_commands_cleared_total") == 3
    bridge.close()


def _photo(path: Path, size: tuple[int, int]) -> None:
    Image.new("RGB", size, (30, 90, 160)).save(path)


def test_folder_source_without_immich(broker: Mosquitto, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    _photo(photos / "a.jpg", (64, 48))
    _photo(photos / "trip" / "b.png", (48, 64))
    (photos / "notes.txt").write_text("not a picture")
    bridge = Bridge(
        config(broker, None, frames=[frame("kitchen", (Source("folder", str(photos)),))])
    )
    bridge.step()
    held = manifest_of(retained(broker))
    assert set(held) == {folder_asset_id("a.jpg"), folder_asset_id("trip/b.png")}
    _photo(photos / "c.jpg", (64, 48))
    os.utime(photos / "a.jpg", (1, 1))  # a changed file gets a new version
    bridge.step()
    after = manifest_of(retained(broker))
    assert folder_asset_id("c.jpg") in after
    assert after[folder_asset_id("a.jpg")] != held[folder_asset_id("a.jpg")]
    bridge.close()


def test_folder_that_goes_missing_keeps_its_pictures(broker: Mosquitto, tmp_path: Path) -> None:
    share = tmp_path / "nas"
    photos = share / "photos"  # inside the share: unmounted, it is missing rather than empty
    photos.mkdir(parents=True)
    _photo(photos / "a.jpg", (64, 48))
    _photo(photos / "b.jpg", (64, 48))
    bridge = Bridge(
        config(broker, None, frames=[frame("kitchen", (Source("folder", str(photos)),))])
    )
    bridge.step()
    held = retained(broker)
    assert len(manifest_of(held)) == 2
    photos.rename(share / "elsewhere")  # the share goes away
    bridge.step()
    bridge.walk()
    bridge.walk()  # two full walks would confirm any removal
    assert retained(broker) == held
    (share / "elsewhere").rename(photos)
    (photos / "b.jpg").unlink()
    bridge.walk()
    assert set(manifest_of(retained(broker))) == {folder_asset_id("a.jpg")}
    bridge.close()


def test_an_unexpected_error_in_the_loop_is_logged_and_survived(
    broker: Mosquitto, fake: FakeImmich, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bridge.service

    monkeypatch.setattr(bridge.service, "LOOP_ERROR_PAUSE", 0.01)
    fake.add_favorites(3)
    service = Bridge(config(broker, fake)).service
    real_tick, calls = service.tick, []

    def tick(now: datetime) -> None:
        calls.append(now)
        if len(calls) == 1:
            raise KeyError("a bug")
        real_tick(now)
        if len(calls) >= 3:
            stop.set()

    monkeypatch.setattr(service, "tick", tick)
    stop = threading.Event()
    runner = threading.Thread(target=service.run, args=(stop,))
    runner.start()
    runner.join(timeout=30)
    assert not runner.is_alive() and len(calls) >= 3
    assert service.metrics.get("loop_errors_total") == 1
    assert len(manifest_of(retained(broker))) == 3
    service.close()


def test_metrics_and_health(broker: Mosquitto, fake: FakeImmich) -> None:
    fake.add_favorites(5)
    port = free_port()
    bridge = Bridge(config(broker, fake, metrics_listen=f"127.0.0.1:{port}"))
    bridge.step()
    fake.fail_next(1, 500, "/api/search/metadata")
    bridge.step()
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    assert 'titanoframe_bridge_polls_total{kind="full"} 1' in text
    assert 'titanoframe_bridge_poll_errors_total{reason="response"} 1' in text
    assert 'titanoframe_bridge_frame_assets{frame="kitchen"} 5' in text
    assert "titanoframe_bridge_immich_requests_total 3" in text  # key check, walk, failed delta
    assert "titanoframe_bridge_mqtt_errors_total 0" in text
    assert "titanoframe_bridge_mqtt_bytes_total " in text
    health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz").read())
    assert health["status"] == "ok" and health["mqtt"] is True and health["immich"] is False
    assert health["frames"]["kitchen"]["pictures"] == 5
    bridge.close()


def _health(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_is_503_naming_the_reason_while_immich_refuses_the_key(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    fake.add_favorites(2)
    port = free_port()
    bridge = Bridge(config(broker, fake, metrics_listen=f"127.0.0.1:{port}"))
    bridge.step()
    assert _health(port)[0] == 200
    with fake.lock:  # the key is revoked in Immich while the bridge runs
        key = fake.keys.pop(fake.api_key)
    bridge.step()
    status, health = _health(port)
    assert status == 503 and health["status"] == "degraded"
    assert health["reason"] == "Immich refuses the API key (401): Invalid API key"
    assert health["mqtt"] is True and health["frames"]["kitchen"]["pictures"] == 2
    fake.fail_next(1, 500, "/api/search/metadata")  # a failure that is not the key's
    bridge.step()
    status, health = _health(port)
    assert status == 503, health  # the key was never accepted since
    assert health["last_error"] != "Invalid API key", health
    with fake.lock:
        fake.keys[fake.api_key] = key
    bridge.step()
    status, health = _health(port)
    assert status == 200 and health["status"] == "ok" and health["reason"] is None
    bridge.close()


def _config_file(tmp_path: Path, broker: Mosquitto, metrics_port: int) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    _photo(photos / "one.jpg", (64, 48))
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
mqtt: {{host: {broker.host}, port: {broker.port}, password: "${{MQTT_PASSWORD}}"}}
renderer: {{public_url: "http://127.0.0.1:8080", cache_dir: ./cache}}
bridge: {{poll_interval: 5, full_scan_interval: 60, metrics_listen: "127.0.0.1:{metrics_port}"}}
frames:
  kitchen:
    secret: "${{KITCHEN_SECRET}}"
    sources: [{{folder: ./photos}}]
"""
    )
    return path


def test_run_under_systemd_and_stop_on_sigterm(broker: Mosquitto, tmp_path: Path) -> None:
    notify_path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(notify_path)
    sock.settimeout(20)
    env = {
        **os.environ,
        "MQTT_PASSWORD": USERS["bridge"],
        "KITCHEN_SECRET": USERS["kitchen"],
        "NOTIFY_SOCKET": notify_path,
        "WATCHDOG_USEC": "1000000",
    }
    path = _config_file(tmp_path, broker, free_port())
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge", "--config", str(path), "run"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        states = [sock.recv(256), sock.recv(256)]
        assert states[0] == b"READY=1" and states[1] == b"WATCHDOG=1"
        deadline = time.monotonic() + 10
        while f"{BASE}/kitchen/manifest" not in retained(broker):
            assert time.monotonic() < deadline
        assert set(manifest_of(retained(broker))) == {folder_asset_id("one.jpg")}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        while (state := sock.recv(256)) == b"WATCHDOG=1":
            pass
        assert state == b"STOPPING=1"
    finally:
        if proc.poll() is None:
            proc.kill()
        stderr = proc.communicate()[1].decode()
        sock.close()
    assert retained(broker)[f"{BASE}/bridge/status"] == b"offline"
    assert USERS["bridge"] not in stderr
    assert "stopping" in stderr


def test_subscribe_after_reconnects_still_waits_for_the_broker(broker: Mosquitto) -> None:
    if broker.proc is None:
        pytest.skip("pauses the broker process")
    mqtt = MqttConfig(host=broker.host, port=broker.port, password=USERS["bridge"])
    link = MqttLink(mqtt, f"{BASE}/bridge/status", lambda message: None)
    link.start()
    try:
        assert link.wait_connected(5)
        link.barrier()
        before = link._client._last_mid
        broker.restart()  # the link reconnects and renews its subscriptions on its own
        deadline = time.monotonic() + 15
        while link.connections < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert link.connections == 2
        link.barrier()  # by now the broker answered the renewal
        # 65535 message ids later the renewal's id comes round again, for a new subscription.
        link._client._last_mid = before
        os.kill(broker.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(MqttTimeout):
                link.subscribe([f"{BASE}/elsewhere"], timeout=0.5)
        finally:
            os.kill(broker.proc.pid, signal.SIGCONT)
    finally:
        link.close()


def test_the_bridge_does_not_hear_its_own_manifest_publishes_back(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    ids = fake.add_favorites(3)
    bridge = Bridge(config(broker, fake, frames=[frame("kitchen"), frame("hall")]))
    bridge.step()
    manifests = bridge.service.manifests
    assert set(manifest_of(retained(broker))) == set(ids)
    heard, sent = manifests.heard, bridge.published
    fake.advance(1)
    fake.unfavorite(ids[0])
    bridge.step()
    bridge.service.link.barrier()  # anything the broker sent back has arrived by now
    assert bridge.published - sent >= 4  # a page and a summary per frame
    assert manifests.heard == heard
    # Another client's manifest message is still heard (and trusted over the bridge's own).
    publish(broker, "bridge", f"{BASE}/hall/manifest/all", "", retain=True)
    bridge.service.link.barrier()
    assert manifests.heard == heard + 1
    bridge.close()


def test_a_restarted_bridge_holds_one_copy_of_the_pages_frames_alike_share(
    broker: Mosquitto, fake: FakeImmich
) -> None:
    fake.add_favorites(40)
    cfg = config(broker, fake, frames=[frame("kitchen"), frame("hall")])
    first = Bridge(cfg)
    first.step()
    first.close()
    again = Bridge(cfg)  # reads the retained manifests back: a copy per frame, from the broker
    again.step()
    manifests = again.service.manifests
    kitchen, hall = (m.retained().pages for m in manifests.mirrors.values())
    assert kitchen == hall and kitchen
    assert all(kitchen[shard] is hall[shard] for shard in kitchen)  # now one, the build's
    assert manifests.pages.parsed == len(kitchen)  # read back once for both frames
    fake.advance(1)
    fake.favorite(fake.add_asset())
    again.step()  # patched: nothing is read back, and nothing parsed is kept
    assert manifests.pages.parsed == len(kitchen) and len(manifests.pages) == 0
    again.close()

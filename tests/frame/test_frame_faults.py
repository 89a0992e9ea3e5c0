"""Faults while the frame syncs: broker restart, renderer down, Wi-Fi loss, a download cut
short, a process killed mid-download, a full card. Afterwards the sync completes, every picture
on the card is whole, and no listed picture was lost. Also: the shuffle through the app."""

from __future__ import annotations

import gc
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.frame.test_frame_app import FRAME, Rig
from tests.kit import framekit as kit
from tests.kit.broker import Mosquitto
from titano_app.frame import bmp
from titano_app.frame.app import RETRY_MS, App
from titano_app.frame.fetch import Fetcher, FetchError
from titano_app.sim.device import SimDevice


@pytest.fixture
def rig(broker: Mosquitto, tmp_path: Path) -> Iterator[Rig]:
    r = Rig(broker, tmp_path)
    yield r
    r.close()


def whole(card: Path) -> bool:
    """Every picture file on the card is a complete BMP; no temp file left in the folders."""
    for path in (card / "p").glob("*/*/*"):
        data = path.read_bytes()
        if not path.name.endswith(".bmp") or bmp.check(data[: bmp.HEAD], len(data)) is not None:
            return False
    return True


def _partway(rig: Rig, n: int) -> App:
    for i in range(n):
        rig.add(i)
    rig.publish()
    app = rig.start()
    assert kit.tick_until(app, lambda: len(kit.card_pictures(rig.card)) >= 2, 20)
    return app


def test_broker_restarted_mid_sync(rig: Rig) -> None:
    app = _partway(rig, 8)
    rig.broker.restart()
    assert rig.synced(40)
    assert whole(rig.card)
    assert app.link.connects >= 2


def test_renderer_down_then_back(rig: Rig) -> None:
    rig.add(1)
    rig.add(2)
    rig.server.status = 502
    rig.publish()
    app = rig.start()
    assert kit.tick_until(app, lambda: app.steps is None and app.round is None and app.retry_ms > 0)
    assert kit.card_pictures(rig.card) == set()
    assert app.live["pending"] == 2 and app.live["sync"] == "error"
    rig.server.status = None
    rig.clock.advance(RETRY_MS)
    assert rig.synced()
    rig.settle()
    assert any(e.get("code") == "download_failed" for e in rig.events())


def test_wifi_lost_mid_sync_the_show_goes_on(rig: Rig) -> None:
    app = _partway(rig, 8)
    rig.device.flaky.down = True
    kit.tick_until(app, lambda: not app.link.connected, 10)
    assert rig.device.screen._icon in rig.device.screen._group  # the offline icon
    shown = app.show.shown
    rig.clock.advance(120_000)
    kit.tick_until(app, lambda: app.show.shown > shown, 5)
    assert app.show.shown > shown
    rig.device.flaky.down = False
    assert rig.synced(40)
    assert whole(rig.card)
    assert rig.device.screen._icon not in rig.device.screen._group


def test_cut_short_download_and_killed_process(rig: Rig) -> None:
    ids = [rig.add(i) for i in range(3)]
    rig.server.truncate = 50_000  # every body ends early: nothing may be committed
    rig.publish()
    app = rig.start()
    assert kit.tick_until(app, lambda: app.steps is None and app.retry_ms > 0)
    assert kit.card_pictures(rig.card) == set() and whole(rig.card)
    # killed mid-download: a half-written temp file is all that is left of it
    (rig.card / "tmp" / f"{ids[0]}.00000001.part").write_bytes(b"BM" + b"\0" * 1000)
    rig.server.truncate = None
    rig.start()  # the restart: leftovers go, the sync completes
    assert rig.synced()
    assert whole(rig.card)
    assert list((rig.card / "tmp").iterdir()) == []


def test_full_card_reports_sd_full_and_keeps_what_it_has(rig: Rig) -> None:
    ids = [rig.add(i) for i in range(2)]
    rig.publish()
    app = rig.start()
    assert rig.synced()
    rig.device.statvfs_hook = lambda path: (4096, 4096, 1000, 10, 10, 0, 0, 0, 0, 255)
    more = [rig.add(i) for i in range(10, 13)]
    rig.publish()
    # room does not come by itself: the round ends, says so once, and is not tried again
    assert kit.tick_until(app, lambda: app.steps is None and app.live["sync"] == "error")
    rig.settle()
    assert app.retry_ms == -1 and app.live["pending"] == 3
    assert kit.card_pictures(rig.card) == set(ids)
    errors = [e for e in rig.events() if e["event"] == "error"]
    assert [(e["code"], e["detail"]) for e in errors] == [
        ("sd_full", "3 listed pictures did not fit")
    ]
    assert app.show.picture in ids
    rig.device.statvfs_hook = None
    rig.pub.command("sync", "PRESS")
    assert rig.synced()
    assert set(more) <= kit.card_pictures(rig.card)


class FastDevice(SimDevice):
    """Records what it would draw; no rendering (1,500 slides)."""

    def show(self, path: str) -> None:
        self.shown.append(path)


def test_shuffle_through_the_app_every_picture_once_per_cycle(tmp_path: Path) -> None:
    card = tmp_path / "card"
    source = tmp_path / "one.bmp"
    source.write_bytes(kit.picture_bytes(1))
    ids = sorted({kit.picture_id(i) for i in range(500)})
    for pid in ids:
        kit.card_file(card, pid, "00000001").hardlink_to(source)
    settings = kit.frame_settings(FRAME, "secret", 1)  # no broker: the show runs offline
    device = FastDevice(settings, card, tmp_path / "screen.png")
    clock = kit.Clock()
    app = App(device, clock)
    while len(device.shown) < 1500:
        clock.advance(61_000)
        app.tick(clock())
    names = [Path(p).name.split(".")[0] for p in device.shown[:1500]]
    for cycle in range(3):
        assert sorted(names[cycle * 500 : (cycle + 1) * 500]) == ids
    assert all(names[i] != names[i + 1] for i in range(len(names) - 1))


def test_wifi_lost_inside_a_download_shows_offline_and_drops_the_round(rig: Rig) -> None:
    """The link fails while MQTT is serviced between download chunks, not in the tick's own
    poll: the app must still see the link go down."""
    for i in range(4):
        rig.add(i)
    rig.publish()
    app = rig.start()
    assert kit.tick_until(app, lambda: app.link.connected and app.steps is not None)
    moved = [0]

    def cut(nbytes: int) -> None:
        moved[0] += nbytes
        if moved[0] > 40_000 and not rig.device.flaky.down:
            rig.device.flaky.down = True
            rig.clock.advance(1000)  # the next chunk services MQTT, which finds the link gone

    rig.device.flaky.on_transfer = cut
    assert kit.tick_until(app, lambda: rig.device.flaky.down and app.steps is None, 10)
    app.tick(rig.clock())
    assert rig.device.screen._icon in rig.device.screen._group  # the offline icon
    assert app.live["sync"] == "offline" and app.round is None
    rig.device.flaky.on_transfer = None
    rig.device.flaky.down = False
    assert rig.synced(40)
    assert rig.device.screen._icon not in rig.device.screen._group
    assert whole(rig.card)


def test_sync_command_on_an_unwritable_record_is_an_sd_error_not_a_crash(rig: Rig) -> None:
    rig.add(1)
    rig.publish()
    app = rig.start()
    assert rig.synced()
    (rig.card / "p" / "synced.tmp").mkdir()  # the record cannot be rewritten
    app.command("sync", b"PRESS", rig.clock())
    rig.settle()
    assert any(e.get("code") == "sd_error" for e in rig.events())
    assert kit.card_pictures(rig.card) == set(rig.pictures)


def test_damaged_sync_record_slot_means_the_page_is_fetched_again(rig: Rig) -> None:
    rig.add(1)
    rig.publish()
    app = rig.start()
    assert rig.synced()
    record = Path(app.store.record.path)
    data = bytearray(record.read_bytes())
    data[8:16] = b"\xff" * 8  # slot of "all": an erased sector
    record.write_bytes(bytes(data))
    requests = len(rig.server.requests)
    app = rig.start()  # a reboot reads the damaged record
    assert kit.tick_until(app, lambda: app.round is not None and app.round.pages > 0)
    assert rig.synced()
    assert len(rig.server.requests) == requests  # the page was diffed again, nothing fetched


def test_boot_feeds_the_watchdog_while_it_counts_a_big_card(tmp_path: Path) -> None:
    card = tmp_path / "card"
    source = tmp_path / "one.bmp"
    source.write_bytes(kit.picture_bytes(1))
    for i in range(600):
        kit.card_file(card, kit.picture_id(i), "00000001").hardlink_to(source)
    settings = kit.frame_settings(FRAME, "secret", 1)
    device = FastDevice(settings, card, tmp_path / "screen.png")
    App(device, kit.Clock())
    assert device.feeds >= 256  # at least once a folder: a card is counted folder by folder


def test_a_change_to_page_all_feeds_the_watchdog_at_every_folder(rig: Rig) -> None:
    """A small library has one page, "all", whose diff walks all 256 card folders."""
    ids = [rig.add(i) for i in range(3)]
    rig.publish()
    app = rig.start()
    assert rig.synced()
    del rig.pictures[ids[0]]
    rig.publish()
    ticks = [0]
    feeds = rig.device.feeds

    def done() -> bool:
        ticks[0] += 1
        return app.steps is None and kit.card_pictures(rig.card) == set(rig.pictures)

    assert kit.tick_until(app, done)
    assert rig.device.feeds - feeds - ticks[0] >= 2 * 256  # removals, then downloads: each folder


class KeepAlive(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive, as the renderer serves: one socket carries many requests."""

    protocol_version = "HTTP/1.1"
    bodies: ClassVar[dict[str, tuple[int, bytes]]] = {}

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        status, body = self.bodies[self.path]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_body_left_unread_is_never_taken_for_the_next_response(tmp_path: Path) -> None:
    picture = kit.picture_bytes(3)
    # what is left of this error body (the part not read with the headers), taken for the next
    # response, is a broken status line: a picture download cut short mid-stream leaves such
    # bytes too, whatever they are
    bad = b"H" * 1000 + b" x \r\n"
    KeepAlive.bodies = {"/bad.bmp": (503, bad), "/a.bmp": (200, picture)}
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    fetcher = Fetcher(socket, None, "secret")
    try:
        with pytest.raises(FetchError, match="HTTP 503"):
            fetcher.download(url + "bad.bmp", str(tmp_path / "bad.part"), lambda: None)
        for n in range(2):
            path = tmp_path / f"a{n}.part"
            assert fetcher.download(url + "a.bmp", str(path), lambda: None) == len(picture)
            assert path.read_bytes() == picture
    finally:
        server.shutdown()
        server.server_close()


def test_an_unforeseen_error_is_reported_and_the_show_goes_on(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from titano_app.frame import main

    rig.add(0)
    rig.publish()
    app = rig.start()
    assert rig.synced()
    real_tick, ticks = app.tick, []

    def tick(now: int) -> None:
        ticks.append(now)
        if len(ticks) == 1:
            raise KeyError("a bug nobody foresaw")
        if len(ticks) > 200:
            raise SystemExit  # the only way out of the loop: the board never leaves it
        real_tick(now)

    monkeypatch.setattr(app, "tick", tick)
    monkeypatch.setattr(main, "PAUSE_AFTER_ERROR_S", 0)
    # The loop collects garbage after every tick, as on the board. What exists now is not
    # collected again, so each collect walks only the loop's own objects, not the test process.
    gc.collect()
    gc.freeze()
    try:
        with pytest.raises(SystemExit):
            main.run(rig.device, app)
    finally:
        gc.unfreeze()
    assert len(ticks) == 201  # it went on ticking after the error
    assert "unexpected error: KeyError('a bug nobody foresaw')" in capsys.readouterr().out
    monkeypatch.setattr(app, "tick", real_tick)
    assert kit.tick_until(app, lambda: any(e.get("code") == "internal" for e in rig.events()), 5)


def test_out_of_memory_is_its_own_event_retried_without_dropping_the_session(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MemoryError in a download, and a summary that finds no memory: each is reported as
    `out_of_memory`, the step is done again, and the MQTT session is the one it was."""
    ids = {rig.add(i) for i in range(3)}
    rig.publish()
    app = rig.start()
    real = app.fetcher.download
    starved = iter([True, False, True])  # the first and third downloads find no memory

    def download(url: str, path: str, between: object) -> int | None:
        if next(starved, False):
            raise MemoryError("memory allocation failed, allocating 2048 bytes")
        return real(url, path, between)  # type: ignore[arg-type]

    monkeypatch.setattr(app.fetcher, "download", download)
    assert rig.synced()
    assert kit.card_pictures(rig.card) == ids
    codes = [e.get("code") for e in rig.events() if e["event"] == "error"]
    assert codes == ["out_of_memory", "out_of_memory"]
    assert app.link.connects == 1 and app.link.connected
    assert app.live["sync"] == "idle" and app.live["error"] is None


def test_a_summary_without_memory_to_parse_is_asked_for_again(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from titano_app.frame import app as app_mod
    from titano_app.frame.summary import parse_summary as real

    ids = {rig.add(i) for i in range(2)}
    rig.publish()
    calls: list[int] = []

    def parse(payload: bytes, into: bytearray | None = None) -> object:
        calls.append(len(payload))
        if len(calls) == 1:
            raise MemoryError("memory allocation failed, allocating 4236 bytes")
        return real(payload, into)

    monkeypatch.setattr(app_mod, "parse_summary", parse)
    app = rig.start()
    assert rig.synced()
    assert kit.card_pictures(rig.card) == ids and len(calls) == 2
    errors = [(e["code"], e["detail"]) for e in rig.events() if e["event"] == "error"]
    assert errors == [("out_of_memory", "summary: memory allocation failed, allocating 4236 bytes")]
    assert app.link.connects == 1


def test_a_publish_without_memory_keeps_the_session_unless_a_byte_went_out(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A publish that finds no memory before a byte goes out (MiniMQTT encodes the payload
    first) is tried again after a collection; if that finds none either it keeps the session
    and is said once as `out_of_memory`, however many fail in a row;
    one that fails after a byte went out has broken the stream, so the session starts afresh."""
    rig.add(1)
    rig.publish()
    app = rig.start()
    assert rig.synced()
    client = app.link._client
    real = client.publish
    # Each publish is tried twice, the second time after a collection.
    plan = ["starved", "real"] + ["starved"] * 6 + ["real", "halfway"]

    def publish(topic: str, msg: str, retain: bool = False, qos: int = 0) -> None:
        step = plan.pop(0) if plan else "real"
        if step == "halfway":
            client._send_bytes(b"\x30")  # a PUBLISH's first byte: the packet is begun
        if step != "real":
            raise MemoryError("memory allocation failed, allocating 424 bytes")
        real(topic, msg, retain=retain, qos=qos)

    monkeypatch.setattr(client, "publish", publish)
    assert app.link.publish(app.topics.state, "{}", True, rig.clock())  # room after collecting
    assert not app.link.problems
    for _ in range(3):
        assert not app.link.publish(app.topics.state, "{}", True, rig.clock())
    assert app.link.connected and app.link.connects == 1
    assert [(p.code, p.detail) for p in app.link.problems] == [
        ("out_of_memory", "publish: memory allocation failed, allocating 424 bytes")
    ]
    assert app.link.publish(app.topics.event, '{"event":"probe"}', False, rig.clock())
    assert not app.link.publish(app.topics.event, '{"event":"probe"}', False, rig.clock())
    assert not app.link.connected
    assert kit.tick_until(app, lambda: app.link.connected)
    assert app.link.connects == 2

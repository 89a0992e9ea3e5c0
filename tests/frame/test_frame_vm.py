"""The frame as users hold it: `code.py` and the app as `make bundle` lays them out, on
CircuitPython 10.2.1's own VM at the heap the Titano leaves free, with only the hardware module
stood in (tests/kit/board/hw.py), against a real Mosquitto, the bridge and the renderer as their own
processes and the fake Immich. What the board shows is read from the stand-in's lines, what it
says from MQTT, what it keeps from the folder that is its SD card.
"""

from __future__ import annotations

import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.kit import framekit as kit
from tests.kit import vmkit
from tests.kit.broker import USERS, Mosquitto
from tests.kit.e2ekit import CAST_TOKEN, FRAME, Services
from tests.kit.mqttc import Collector

pytestmark = [pytest.mark.slow, vmkit.needs_vm]
BASE = f"titanoframe/{FRAME}/"


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return vmkit.bundle(tmp_path_factory.mktemp("bundle") / "CIRCUITPY")


class Rig:
    """Services, a slow-able proxy in front of the renderer, an observer, and the board."""

    def __init__(
        self, broker: Mosquitto, tmp: Path, app: Path, heap: str = "150k", frame_extra: str = ""
    ) -> None:
        # The board's own heap. The 120k margin is test_frame_vm_memory.py's; at 120k a command
        # (its module loads at first use) and failed downloads can leave the state message no
        # block of ~420 bytes, and the board keeps reporting out_of_memory: an open problem.
        self.broker = broker
        self.proxy = vmkit.SlowProxy(0)
        self.services = Services(broker, tmp, public_port=self.proxy.port, frame_extra=frame_extra)
        self.proxy.upstream = self.services.http_port
        self.fake = self.services.fake
        self.card = tmp / "card"
        self.watch = self._observer()
        settings = kit.frame_settings(FRAME, USERS[FRAME], broker.port)
        self.board = vmkit.BoardFrame(app, self.card, settings, heap)

    def _observer(self) -> Collector:
        watch = Collector(self.broker, "homeassistant")
        assert watch.wait_connected()
        watch.subscribe(BASE + "#")
        return watch

    def reobserve(self) -> None:
        """A new observer (after a broker restart), with the retained state and status."""
        self.watch.close()
        self.watch = self._observer()

    def messages(self, leaf: str) -> list[bytes]:
        with self.watch.lock:
            return [p for t, p, _ in self.watch.messages if t == BASE + leaf]

    def events(self, kind: str | None = None) -> list[dict[str, object]]:
        found = [json.loads(p) for p in self.messages("event")]
        return [e for e in found if kind is None or e["event"] == kind]

    def state(self) -> dict[str, object]:
        states = self.messages("state")
        return json.loads(states[-1]) if states else {}

    def on_card(self) -> set[str]:
        return kit.card_pictures(self.card)

    def command(self, name: str, payload: str) -> None:
        info = self.watch.client.publish(BASE + "cmd/" + name, payload, qos=1)
        info.wait_for_publish(5)

    def until(self, done: object, seconds: float = 60.0) -> bool:
        return vmkit.wait_until(done, seconds, self.board)  # type: ignore[arg-type]

    def booted_with(self, favourites: int) -> set[str]:
        """Immich with this many favourites, the board started and synced to them."""
        ids = set(self.fake.add_favorites(favourites))
        self.board.start()
        assert self.synced(ids), self.report()
        return ids

    def synced(self, ids: set[str], seconds: float = 60.0) -> bool:
        """The card holds exactly `ids` and the frame said so."""
        return self.until(lambda: self.on_card() == ids and bool(self.events("synced")), seconds)

    def report(self) -> str:
        tail = "\n".join(self.board.output()[-40:])
        return f"VM said:\n{tail}\nevents: {self.events()}\n{self.services.logs()[-3000:]}"

    def healthy(self) -> None:
        """Nothing the frame drew was broken, nothing crashed, memory never ran out."""
        assert self.board.crashed() == [], self.report()
        assert all(size == vmkit.PICTURE for _, size in self.board.shown()), self.report()
        codes = {e.get("code") for e in self.events("error")}
        assert not codes & {"out_of_memory", "internal"}, self.report()

    def close(self) -> None:
        self.board.stop()
        self.watch.close()
        self.services.close()
        self.proxy.close()


@pytest.fixture
def rig(broker: Mosquitto, tmp_path: Path, compiled: Path) -> Iterator[Rig]:
    r = Rig(broker, tmp_path, compiled)
    yield r
    r.close()


@pytest.mark.parametrize("compiled_app", [True, False], ids=["mpy", "py"])
def test_boots_as_bundled_syncs_and_boots_again_from_its_card(
    broker: Mosquitto, tmp_path: Path, compiled_app: bool
) -> None:
    """Both ways `make bundle` ships the app: with CircuitPython's mpy-cross, and as .py (the
    board compiles it; more heap then, hence 150k, the board's own)."""
    app = vmkit.bundle(tmp_path / "CIRCUITPY", compiled_app)
    (tmp_path / "world").mkdir()
    rig = Rig(broker, tmp_path / "world", app, "120k" if compiled_app else "150k")
    try:
        ids = set(rig.fake.add_favorites(4))
        rig.board.start()
        assert rig.until(lambda: rig.messages("status")[-1:] == [b"online"]), rig.report()
        assert rig.synced(ids), rig.report()
        assert rig.until(lambda: rig.state().get("count") == 4), rig.report()
        assert rig.state()["version"] and rig.state()["sync"] == "idle"
        first_boot = rig.state()["boot"]
        assert isinstance(first_boot, str) and re.fullmatch(r"[0-9a-f]{8}", first_boot)
        assert rig.board.shown()
        # power cut, then a boot with the network down: the card's pictures are shown anyway
        rig.board.power_cut()
        rig.board.say("wifi off")
        drawn, icons = len(rig.board.shown()), len(rig.board.marks("offline"))
        rig.board.start()
        assert rig.until(lambda: len(rig.board.shown()) > drawn, 30), rig.report()
        # and the offline icon is on it from the first tick, not only after a change
        assert rig.until(lambda: rig.board.marks("offline")[icons:][:1] == [["1"]], 30)
        online = len(rig.messages("status"))
        rig.board.say("wifi on")
        assert rig.until(lambda: rig.messages("status")[online:].count(b"online") >= 1, 30)
        assert rig.on_card() == ids
        # each boot has its own boot id (protocol §3)
        assert rig.until(lambda: rig.state().get("boot") not in (None, first_boot), 30)
        rig.healthy()
    finally:
        rig.close()


def test_commands(rig: Rig) -> None:
    ids = rig.booted_with(3)
    assert rig.until(lambda: bool(rig.events("shown")))
    shown = len(rig.events("shown"))
    rig.command("next", "PRESS")
    assert rig.until(lambda: len(rig.events("shown")) > shown), rig.report()
    rig.command("brightness", "40")
    assert rig.until(lambda: rig.state().get("brightness") == 40), rig.report()
    assert ["40"] in rig.board.marks("backlight")
    rig.command("display", "OFF")
    assert rig.until(lambda: rig.state().get("display") == "OFF"), rig.report()
    assert rig.board.marks("backlight")[-1] == ["0"]
    rig.command("display", "ON")
    before = rig.events("shown")[-1].get("picture")
    assert rig.until(lambda: rig.state().get("picture") == before), rig.report()
    target = next(i for i in sorted(ids) if i != before)
    rig.command("show", target)
    assert rig.until(lambda: rig.state().get("picture") == target), rig.report()
    rig.command("previous", "PRESS")  # back to the picture before the shown one, not past it
    assert rig.until(lambda: rig.state().get("picture") == before), rig.report()
    synced = len(rig.events("synced"))
    rig.command("sync", "PRESS")
    assert rig.until(lambda: len(rig.events("synced")) > synced), rig.report()
    # the slideshow goes on by itself at the shortest interval
    rig.command("interval", "5")
    shown = len(rig.events("shown"))
    assert rig.until(lambda: len(rig.events("shown")) >= shown + 2, 30), rig.report()
    rig.command("brightness", "lots")
    assert rig.until(lambda: any(e.get("code") == "bad_command" for e in rig.events("error")))
    rig.healthy()


def test_a_change_in_immich_is_one_download_or_one_removal(rig: Rig) -> None:
    ids = rig.booted_with(3)
    new = rig.fake.add_favorites(1)[0]
    assert rig.until(lambda: rig.on_card() == ids | {new}), rig.report()
    one = {"event": "synced", "added": 1, "removed": 0, "pages": 1}
    assert rig.until(lambda: one in rig.events())
    rig.fake.unfavorite(new)
    assert rig.until(lambda: rig.on_card() == ids), rig.report()
    assert rig.until(lambda: {**one, "added": 0, "removed": 1} in rig.events())
    rig.healthy()


def _parts(card: Path) -> list[Path]:
    return [p for p in (card / "tmp").glob("*.part") if p.stat().st_size > 0]


def test_power_cuts_mid_download_lose_nothing_and_show_nothing_broken(rig: Rig) -> None:
    ids = set(rig.fake.add_favorites(6))
    rig.proxy.delay = 0.05  # about a second a picture
    for _ in range(3):
        rig.board.start()
        assert rig.until(lambda: bool(_parts(rig.card)), 60), rig.report()
        rig.board.power_cut()
        for path in kit.card_files(rig.card):  # what is on the card is whole
            assert path.stat().st_size == vmkit.PICTURE
    rig.proxy.delay = 0.0
    rig.board.start()
    assert rig.synced(ids, 90), rig.report()
    assert all(p.stat().st_size == vmkit.PICTURE for p in kit.card_files(rig.card))
    assert rig.until(lambda: not list((rig.card / "tmp").iterdir()), 10)
    rig.healthy()


def test_broker_restart(rig: Rig) -> None:
    ids = rig.booted_with(2)
    rig.broker.restart()
    rig.reobserve()
    new = rig.fake.add_favorites(1)[0]
    assert rig.until(lambda: rig.on_card() == ids | {new}, 90), rig.report()
    assert rig.until(lambda: rig.messages("status")[-1:] == [b"online"], 30)
    rig.healthy()


def test_renderer_down_costs_nothing_and_a_sync_catches_up(rig: Rig) -> None:
    ids = rig.booted_with(2)
    rig.services.stop_renderer()
    new = rig.fake.add_favorites(1)[0]
    failed = lambda: any(e.get("code") == "download_failed" for e in rig.events("error"))  # noqa: E731
    assert rig.until(failed, 60), rig.report()
    assert rig.on_card() == ids and rig.board.alive()
    rig.services.start_renderer()
    rig.command("sync", "PRESS")
    assert rig.until(lambda: rig.on_card() == ids | {new}, 60), rig.report()
    assert rig.until(lambda: rig.state().get("sync") == "idle", 30), rig.report()
    rig.healthy()


def test_the_vm_tools_are_found_where_ci_lays_them_out() -> None:
    assert shutil.which(str(vmkit.VM)) and shutil.which(str(vmkit.MPY_CROSS))


def test_a_command_flood_during_a_manifest_change_loses_nothing(rig: Rig) -> None:
    """3,000 brightness commands while the frame downloads a change, then a last one at QoS 1:
    the frame ends on the new manifest and on the last value, and says a flood came."""
    ids = rig.booted_with(2)
    rig.proxy.delay = 0.05  # a second a picture: the flood lands mid-round
    new = set(rig.fake.add_favorites(3))
    assert rig.until(lambda: bool(_parts(rig.card)), 60), rig.report()
    for i in range(3000):
        rig.watch.client.publish(BASE + "cmd/brightness", str(i % 101), qos=0)
    rig.command("brightness", "40")
    rig.proxy.delay = 0.0
    assert rig.until(lambda: rig.on_card() == ids | new, 90), rig.report()
    assert rig.until(lambda: rig.state().get("brightness") == 40, 30), rig.report()
    overflow = [e for e in rig.events("error") if e["code"] == "overflow"]
    assert overflow and str(overflow[0]["detail"]).endswith(" dropped"), rig.report()
    assert rig.messages("status") == [b"online"], rig.report()  # one session through it all
    rig.healthy()


def test_long_press_likes_in_immich_taps_keep_their_thirds_and_notices_show(
    broker: Mosquitto, tmp_path: Path, compiled: Path
) -> None:
    """The board's touch stand-in held for over a second: a hold event the bridge turns into an
    Immich write (here an un-favourite, so the picture leaves the card), the notice icon the
    bridge answers with, and a tap afterwards still a tap."""
    rig = Rig(broker, tmp_path, compiled, frame_extra="long_press: like")
    try:
        ids = rig.booted_with(3)
        assert rig.until(lambda: rig.state().get("picture") in ids), rig.report()
        held = str(rig.state()["picture"])
        rig.board.say("hold 240")
        assert rig.until(lambda: bool(rig.events("touch")), 30), rig.report()
        rig.board.say("release 0")
        assert rig.events("touch") == [{"event": "touch", "action": "hold", "picture": held}]
        assert rig.until(lambda: not rig.fake.asset(held).favorite, 30), rig.report()
        assert rig.until(lambda: rig.on_card() == ids - {held}, 60), rig.report()
        assert rig.until(lambda: ["unliked"] in rig.board.marks("notice"), 30), rig.report()
        assert rig.until(lambda: rig.board.marks("notice")[-1] == ["-"], 30), rig.report()
        rig.board.say("touch 470")  # the right third: next
        assert rig.until(lambda: len(rig.events("touch")) == 2, 30), rig.report()
        assert rig.events("touch")[-1] == {"event": "touch", "action": "next"}
        assert rig.state().get("paused") is False
        rig.healthy()
    finally:
        rig.close()


def test_a_photo_sent_from_outside_the_manifest_is_drawn_once_it_lands(
    broker: Mosquitto, tmp_path: Path, compiled: Path
) -> None:
    """`show` with the id of an Immich photo none of the frame's sources hold: the bridge lists
    it as a guest, the board downloads it and draws it on the tick it lands, and keeps the
    pictures it had."""
    rig = Rig(broker, tmp_path, compiled)
    try:
        ids = rig.booted_with(2)
        outside = rig.fake.add_assets(1)[0]
        assert outside not in ids
        rig.command("show", outside)
        assert rig.until(lambda: outside in rig.on_card(), 60), rig.report()
        assert rig.until(lambda: rig.state().get("picture") == outside, 30), rig.report()
        assert rig.on_card() == ids | {outside}
        assert not [e for e in rig.events("error") if e.get("code") == "bad_command"]
        rig.healthy()
    finally:
        rig.close()


def test_a_cast_is_shown_then_the_slideshow_resumes(rig: Rig) -> None:
    """An image posted to the renderer reaches the board as an announcement on its cast topic:
    it is downloaded into the card's tmp folder, shown at once for its seconds, and then the
    slideshow goes on from the card; the card's pictures stay as they were."""
    ids = rig.booted_with(3)
    assert rig.until(lambda: bool(rig.events("shown")))
    shown, draws = len(rig.events("shown")), len(rig.board.shown())
    image = io.BytesIO()
    Image.new("RGB", (640, 480), (220, 30, 30)).save(image, "JPEG")
    url = f"http://127.0.0.1:{rig.services.http_port}/v1/frames/{FRAME}/cast"
    headers = {"Authorization": f"Bearer {CAST_TOKEN}", "Content-Type": "image/jpeg"}
    r = requests.post(
        url, data=image.getvalue(), headers=headers, params={"seconds": 5}, timeout=30
    )
    assert r.status_code == 200, r.text
    cast_event = {"event": "cast", "id": r.json()["id"], "seconds": 5}
    assert rig.until(lambda: cast_event in rig.events()), rig.report()
    drawn = rig.board.shown()[draws:]
    assert drawn and "/tmp/cast" in drawn[0][0], rig.report()
    # then the slideshow: a picture of the card, said with a `shown` event
    assert rig.until(lambda: len(rig.board.shown()) > draws + 1, 30), rig.report()
    after = rig.board.shown()[draws + 1][0]
    assert "/p/" in after and any(pid in after for pid in ids), rig.report()
    assert rig.until(lambda: len(rig.events("shown")) > shown), rig.report()
    assert rig.on_card() == ids
    rig.healthy()


def test_a_manifest_that_drops_everything_then_brings_it_back_downloads_nothing(
    broker: Mosquitto, tmp_path: Path, compiled: Path
) -> None:
    """Every picture leaves the manifest (retired: off the slideshow, kept on the card), the
    board is rebooted, they all come back at the same versions: not one file deleted, not one
    downloaded again."""
    lib = vmkit.Library(broker, 4)
    card = tmp_path / "card"
    settings = kit.frame_settings("kitchen", USERS["kitchen"], broker.port)
    board = vmkit.BoardFrame(compiled, card, settings)
    watch = Collector(broker, "homeassistant")
    assert watch.wait_connected()
    watch.subscribe("titanoframe/kitchen/event")

    def synced() -> list[dict[str, object]]:
        with watch.lock:
            found = [json.loads(p) for _, p, _ in watch.messages]
        return [e for e in found if e["event"] == "synced"]

    def files() -> dict[str, int]:
        return {p.name: p.stat().st_ino for p in card.rglob("*.bmp")}

    def say() -> str:
        tree = sorted(str(p.relative_to(card)) for p in card.rglob("*"))
        return "\n".join(board.output()[-30:]) + f"\nsynced: {synced()}\n{tree}"

    ids = set(lib.pictures)
    try:
        board.start()
        assert vmkit.wait_until(lambda: kit.card_pictures(card) == ids and bool(synced()), 60)
        before = files()
        assert len(before) == 4 and len(lib.server.requests) == 4
        everything = dict(lib.pictures)
        lib.drop(list(everything))
        gone = {"event": "synced", "added": 0, "removed": 4, "pages": 0}
        assert vmkit.wait_until(lambda: gone in synced(), 60, board), say()
        assert kit.card_pictures(card) == set() and files() == before
        board.power_cut()
        board.start()
        lib.pictures = everything
        lib.pub.manifest(lib.pictures, lib.server.url)
        back = {"event": "synced", "added": 4, "removed": 0, "pages": 1}  # as the first sync
        assert vmkit.wait_until(lambda: synced().count(back) == 2, 60, board), say()
        assert kit.card_pictures(card) == ids and files() == before, say()
        assert len(lib.server.requests) == 4  # not one download
        assert board.crashed() == [], say()
        assert all(size == vmkit.PICTURE for _, size in board.shown())
    finally:
        board.stop()
        watch.close()
        lib.close()

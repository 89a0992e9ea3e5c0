"""The frame app: boot, then `tick(now_ms)` over and over. Does I/O through the device, the
card store, the MQTT link and the fetcher; runs unchanged under the simulator.

Boot shows a picture from the card before the network is even tried. Each tick: feed the
watchdog, service MQTT (reconnecting with back-off), act on messages and touches, follow the
light sensor, end a cast or advance the slideshow when due, take one step of the sync round,
publish the state when due. Errors are reported as events and never stop the show.
"""

import gc
import time

from . import VERSION, state
from .backlight import Backlight
from .config import Config
from .errors import FrameError, out_of_memory
from .fetch import Fetcher
from .level import HOLD, Touch
from .link import Link, LinkError
from .manifest import ManifestError
from .show import Show
from .summary import DIGESTS, Summary, parse_summary
from .sync import Round

try:  # the board has no contextlib, hence no suppress()
    from collections.abc import Callable, Iterator

    from .device import Device
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

RETRY_MS = 60000  # a failed round is tried again this long after it ended
SERVICE_MS = 250  # MQTT service between download pieces


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1000000


class App:
    def __init__(self, device: Device, clock: Callable[[], int] | None = None) -> None:
        self.device = device
        self.clock = clock or monotonic_ms
        config = Config(device.getenv)
        self.topics = config.topics
        pool, ctx, secret = device.pool, device.ssl_context, config.secret
        self.link = Link(self.topics, config.host, config.port, secret, pool, ctx, device.feed)
        self._spare: bytearray | None = bytearray(DIGESTS)
        from . import card  # after the page buffer: see card

        self.store = card.open_store(device, config.keep_days)
        self.settings = card.load_settings(self.store.root)
        self.show = Show(device, self.store)
        self.pacer = state.Pacer()
        self.lamp = Backlight(device)
        self.touch = Touch()
        self.boot_ms = self.clock()
        self.summary: Summary | None = None
        self.round: Round | None = None
        self.steps: Iterator[None] | None = None
        self.retry_ms = -1
        self.live: dict[str, object] = {"sync": "offline", "version": VERSION, "pending": 0}
        self._serviced_ms = 0
        self._online: bool | None = None  # None: the first tick sets the icon
        self._mem_low: int | None = None  # least free heap since the last state
        self.fetcher = Fetcher(pool, ctx, secret)
        from .cast import Cast  # after the page buffer: compiling it must not split the heap

        self.cast = Cast(self.store.root + "/tmp", self.fetcher, device.show)
        self.lamp.apply(self.settings)
        if self.store.count() and self.settings["display"]:  # before the network is tried
            self._advance("next", self.boot_ms)
        device.connect_wifi()

    def tick(self, now: int) -> None:
        self.device.feed()
        # right after the main loop's collection
        self._mem_low = state.lower(self._mem_low, self.device.mem_free())
        self._network(now)
        while self.link.problems:
            self.report(self.link.problems.pop(0))
        for topic, payload in self.link.inbox.take():  # merged by topic: see inbox
            self._message(topic, payload, now)
        if self.steps is None:  # the page buffer is free now
            self.link.free_buffer()
        act = self.touch.update(self.device.touch(), self.device.touching(), now)
        if act is not None:
            self._touch(act, now)
        self.show.tick(now)
        if self.lamp.follow(self.settings, self.live, now):
            self.pacer.changed()
        s = self.settings
        go = bool(s["display"] and not s["paused"])
        self.cast.tick(now, self.show, go)
        if go and now >= self.show.due_ms:
            self._advance("next", now)
        self._sync_step(now)
        self.store.retired.tidy(now)
        if self.pacer.due(now) and self.link.connected:
            self._publish_state(now)

    def _network(self, now: int) -> None:
        if not self.link.connected and now >= self.link._retry_at:
            self.device.connect_wifi()
        up = self.link.poll(now)
        # vs. the last seen: the link also drops in downloads, fetches, publishes
        if up != self._online:
            self._online = up
            self.device.offline(not up)
            self.live["sync"] = "idle" if up else "offline"
            self.pacer.changed()
            if not up:
                self._drop_round()

    def _message(self, topic: str, payload: bytes | bytearray | memoryview, now: int) -> None:
        if topic == self.topics.manifest:
            if not payload:
                return
            # the link's periodic look: nothing to do at the same rev
            same, self.link.checked = self.steps is None and self.link.checked, False
            self._drop_round()  # frees its page and listings before parsing
            gc.collect()
            try:
                summary = parse_summary(payload, self._spare)
            except ManifestError as e:
                self.report(e)
                return
            except MemoryError as e:  # asked for again once memory is freed
                self.report(out_of_memory("summary", e))
                self.link.resend = True
                return
            same = same and self.retry_ms < 0 and summary.rev == (self.summary or summary).rev
            if not same:  # the old summary's digests serve the next (early)
                self._spare = self.summary.digests if self.summary else bytearray(DIGESTS)
                self._start_round(summary, now)
            return
        if topic == self.topics.cast and payload:
            try:
                self._event(self.cast.start(payload, now, self._between, self.show), now)
            except FrameError as e:
                self.report(e)
            return
        name = self.topics.command_of(topic)
        # An empty payload is how a retained command is cleared (by the bridge): it arrives
        # live like any message, and must not run the command a second time.
        if name is not None and payload:
            self.command(name, payload, now)

    def command(self, name: str, payload: bytes | bytearray | memoryview | str, now: int) -> None:
        from . import dispatch  # at the first command, not at boot: the heap is tight then

        dispatch.command(self, name, payload, now)

    def _settings_changed(self, action: str, now: int) -> None:
        try:
            from . import card

            card.save_settings(self.store.root, self.settings)
        except FrameError as e:
            self.report(e)
        if action == "interval":
            self.show.due_ms = now + self._interval() * 1000
        self.lamp.apply(self.settings)
        self.pacer.changed()

    def _touch(self, action: str, now: int) -> None:
        if action == HOLD:  # for the bridge: the frame's `long_press` says what it does
            self._event(state.touch_event(action, self.show.picture), now)
            return
        self._event(state.touch_event(action), now)
        if action == "pause":
            self.command("pause", "OFF" if self.settings["paused"] else "ON", now)
        else:
            self._advance(action, now)

    def _interval(self) -> int:
        return int(self.settings["interval"])  # type: ignore[call-overload,no-any-return]

    def _advance(self, direction: str, now: int) -> None:
        interval = self._interval()
        if self.show.step(direction, now, interval) is not None:
            self._shown(now)

    def _shown(self, now: int) -> None:
        picture = self.show.picture
        self.live["picture"] = picture
        self.live["shown_at"] = self.device.unix_time()
        if picture is not None:
            self._event(state.shown_event(picture), now)
        self.pacer.changed()

    def _start_round(self, summary: Summary, now: int) -> None:
        self._drop_round()
        self.summary = summary
        feed = self._between
        self.round = Round(
            summary, self.store, self.link, self.fetcher, self.report, feed, self.clock
        )
        self.steps = self.round.steps()
        self.live["sync"] = "syncing"
        self.live["rev"] = summary.rev
        self.pacer.changed()

    def _drop_round(self) -> None:
        if self.steps is not None:
            self.steps = self.round = None
            self.retry_ms = self.clock() + 1000

    def _between(self) -> None:
        # each piece: feed the watchdog; every SERVICE_MS: keep MQTT alive, take commands
        self.device.feed()
        now = self.clock()
        if now - self._serviced_ms >= SERVICE_MS:
            self._serviced_ms = now
            self.link.poll(now)

    def _sync_step(self, now: int) -> None:
        if self.steps is None:
            if self.summary is not None and 0 <= self.retry_ms <= now and self.link.connected:
                self._start_round(self.summary, now)
            return
        rnd = self.round
        assert rnd is not None
        try:
            next(self.steps)
        except StopIteration:
            self._round_done(rnd, now)
        except LinkError:
            self._drop_round()
        except FrameError as e:
            self.report(e)
            self._drop_round()
        except MemoryError as e:  # outside a page (the round retries those itself)
            gc.collect()
            self.report(out_of_memory("sync", e))
            self._drop_round()
        if rnd.changed:
            rnd.changed = False
            self._card_changed(now)

    def _card_changed(self, now: int) -> None:
        self.show.resize()  # the count is read when the state is published
        if self.show.wanted is not None:  # a picture sent to the frame (dispatch is loaded)
            from . import dispatch

            if dispatch.arrived(self, now):
                self._shown(now)
        if self.show.picture is None and self.settings["display"]:
            self._advance("next", now)
        self.pacer.changed()

    def _round_done(self, rnd: Round, now: int) -> None:
        self.steps = self.round = None
        self.retry_ms = now + RETRY_MS if rnd.failed else -1
        self.live["pending"] = rnd.pending
        self.live["sync"] = "error" if rnd.failed or rnd.full else "idle"
        if not (rnd.failed or rnd.full):
            self.live["error"] = None
            self.live["synced_at"] = self.device.unix_time()
        self._event(state.synced_event(rnd.added, rnd.removed, rnd.pages), now)
        self.pacer.changed()

    def report(self, error: FrameError) -> None:
        self.live["error"] = error.code
        self._event(state.error_event(error.code, error.detail), self.clock())
        self.pacer.changed()

    def _event(self, payload: str, now: int) -> None:
        self.link.publish(self.topics.event, payload, False, now)

    def _publish_state(self, now: int) -> None:
        live = self.live
        live["count"] = self.store.count()
        live["uptime"] = (now - self.boot_ms) // 1000
        live["rssi"] = self.device.rssi()
        live["mem_free"] = self._mem_low
        live["sd_free_mb"] = self.store.free_mb()
        if self.link.publish(self.topics.state, state.state_json(self.settings, live), True, now):
            self.pacer.sent(now)
            self._mem_low = None

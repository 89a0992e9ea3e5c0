"""The bridge daemon: wires sources, manifests, MQTT, Home Assistant and schedules together.
Does I/O (Immich, MQTT, the metrics port, signals, systemd notifications).

`main(config)` runs it until SIGTERM/SIGINT. Tests drive a `Service` by hand instead:
`start(now)`, then `tick(now)` with whatever clock they like (polls run when `poll_interval`
has passed since the last one, full walks after `full_scan_interval`), `handle_events()` to
process messages that arrived, and `close()`.

The messages the bridge reacts to arrive on paho's thread (`_on_message`): manifest and
discovery topics only update what it knows the broker holds; a retained `cmd/` message is
cleared there at once; frame states and Home Assistant's birth message are queued for the
loop, which may need Immich (picture metadata) or wait for acknowledgements.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from bridge.actions import Actions, held_picture
from bridge.arrivals import Arrivals, parse_state
from bridge.boards import Boards, boot_of
from bridge.bridgestate import VERSION, BridgeState, frame_row, iso
from bridge.commands import Commands
from bridge.frames import published_pictures
from bridge.homeassistant import HomeAssistant
from bridge.manifests import Manifests
from bridge.metrics import Metrics, MetricsServer
from bridge.mqtt import Message, MqttError, MqttLink
from bridge.outage import Outage
from bridge.replies import Replies
from bridge.sending import Sending
from bridge.showing import Showing
from bridge.sources import Lister, Policy
from bridge.startup import StartupError, check_immich
from bridge.sync import Sync, Wanted
from common import sdnotify, topics
from common.config import Config
from common.immich import (
    ImmichAuthError,
    ImmichClient,
    ImmichError,
    ImmichNotFound,
    ImmichResponseError,
    ImmichUnreachable,
)

log = logging.getLogger(__name__)


# After an unexpected error in the loop, wait this long (seconds) before the next tick.
LOOP_ERROR_PAUSE = 5.0

CONNECT_TIMEOUT = 10.0


_REASONS: tuple[tuple[type[ImmichError], str], ...] = (
    (ImmichUnreachable, "unreachable"),
    (ImmichAuthError, "auth"),
    (ImmichResponseError, "response"),
    (ImmichNotFound, "not_found"),
)


def _reason(exc: ImmichError) -> str:
    """A metric label for an Immich failure."""
    return next((label for kind, label in _REASONS if isinstance(exc, kind)), "error")


class Service:
    """One bridge: `start(now)`, `tick(now)` repeatedly, `close()`."""

    def __init__(self, config: Config, immich: ImmichClient | None = None) -> None:
        self.config = config
        self.base = config.mqtt.base_topic
        self.prefix = config.mqtt.discovery_prefix
        self.tz = ZoneInfo(config.bridge.timezone)
        self.metrics = Metrics()
        self.wanted = Wanted.of(config.frames)
        if immich is None and config.immich is not None and self.wanted.immich:
            immich = ImmichClient(config.immich.url, config.immich.api_key, config.immich.timeout)
        self.immich = immich
        b = config.bridge
        self.policy = Policy(b.include_archived, b.include_partners)
        lister = Lister(immich, self.policy) if immich is not None else None
        self.sync = Sync(self.wanted, lister, self.tz, b.full_scan_interval)
        self.frames = [f.id for f in config.frames]
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.link = MqttLink(config.mqtt, topics.bridge_status(self.base), self._on_message)
        self.manifests = Manifests(
            self.link, self.base, config.frames, config.renderer.public_url, b.max_removal,
            self.metrics, b.removal_hold,
        )  # fmt: skip
        self.showing = Showing(config, self.sync, self.link, self.metrics, self.tz, immich)
        self.commands = Commands(self.link, self.base, config.frames, self.tz, self.metrics)
        self.hass = HomeAssistant(self.link, self.prefix, self.base, self.frames, self.metrics)
        replies = Replies(self.link, self.base, self.metrics)
        self.actions = Actions(config, self.sync, self.showing, replies, immich)
        self.sending = Sending(
            config, self.link, self.manifests.states, replies, immich, self.metrics
        )
        self.requests: list[tuple[str, str, str]] = []  # (frame, like|hide|show|hold, payload)
        self.arrivals = Arrivals()
        self.server: MetricsServer | None = None
        self.next_poll: datetime | None = None
        self.last_tick: datetime | None = None
        self.last_poll_ok: float | None = None
        self.last_error: str | None = None
        # Why Immich refused the API key (401/403) at the last poll that reached it; a poll that
        # succeeds clears it. While set, the bridge is not healthy: nothing it shows can change.
        self.key_refused: str | None = None
        self.outage = Outage()
        self.state = BridgeState(self.link, self.base)
        self.boards = Boards()
        self._connections = 0
        self.stopping = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, now: datetime, connect_timeout: float | None = CONNECT_TIMEOUT) -> None:
        """Check Immich, connect, read back what the broker holds, publish discovery.

        Raises StartupError when the bridge cannot work with this config. `connect_timeout`
        None waits for the broker as long as it takes.
        """
        listen = self.config.bridge.metrics_listen
        if listen:
            try:
                self.server = MetricsServer(listen, self.metrics, self.health)
            except OSError as exc:  # port taken, address not on this host
                raise StartupError(
                    f"bridge.metrics_listen {listen!r}: {exc.strerror or exc}"
                ) from None
            self.server.start()
        if self.immich is not None:
            self.policy = self._with_me(check_immich(self.immich, self.config))
        self.link.start()
        waited = 0.0
        while not self.link.wait_connected(1.0):
            waited += 1.0
            if self.stopping.is_set():
                raise StartupError("stopped before the broker answered")
            if connect_timeout is not None and waited >= connect_timeout:
                raise StartupError(f"no connection to the MQTT broker after {waited:g}s")
            if waited in (5.0, 30.0) or waited % 300 == 0:
                log.warning("still waiting for the MQTT broker (%gs)", waited)
        self._connections = self.link.connections
        self._read_back()
        self.hass.publish(force=False)
        self.link.subscribe([topics.state(self.base, f) for f in self.frames])
        held = [f.id for f in self.config.frames if f.long_press != "off"]
        if held:  # a long press on these frames likes or hides the picture shown
            self.link.subscribe([topics.event(self.base, f) for f in held])
        # `+/cmd/#` also brings the bridge's own commands (`bridge/cmd/confirm_removal`).
        self.link.subscribe([topics.status(self.base, f) for f in self.frames])
        self.link.subscribe([topics.frames_filter(self.base, "cmd/#")], retain_as_published=True)
        self.link.subscribe(self.hass.status_topics, retain_as_published=True)
        self.last_tick = now
        sdnotify.notify(sdnotify.READY)
        log.info("bridge started: %d frames, base topic %s", len(self.frames), self.base)

    def _needs_me(self) -> bool:
        """Partners are left out but the key's owner is not known yet (Immich was down)."""
        return not self.config.bridge.include_partners and self.policy.me is None

    def _with_me(self, me: str | None) -> Policy:
        b = self.config.bridge
        policy = Policy(b.include_archived, b.include_partners, me)
        if self.sync.lister is not None:
            self.sync.lister.policy = policy
        return policy

    def close(self) -> None:
        """Say offline, disconnect, stop the metrics server."""
        sdnotify.notify(sdnotify.STOPPING)
        self.link.close()
        if self.server is not None:
            self.server.stop()
        if self.immich is not None:
            self.immich.close()

    def run(self, stop: threading.Event) -> None:
        """Tick on the wall clock until `stop` is set, sending systemd watchdog pings."""
        watchdog = sdnotify.watchdog_interval()
        pinged = 0.0
        while not stop.is_set():
            try:
                self.tick(datetime.now(UTC))
                if watchdog is not None and time.monotonic() - pinged >= watchdog:
                    sdnotify.notify(sdnotify.WATCHDOG)
                    pinged = time.monotonic()
                self.handle_events(1.0)
            except Exception:
                # A bug in one step must not stop every frame's updates: say so and go on. The
                # watchdog is not fed meanwhile, so a loop that only ever fails gets restarted.
                log.exception("unexpected error in the bridge loop; carrying on")
                self.metrics.inc("loop_errors_total")
                stop.wait(LOOP_ERROR_PAUSE)

    def wake(self) -> None:
        """Stop soon: make a waiting `start` or `handle_events` return (a signal handler)."""
        self.stopping.set()
        self.events.put(("wake", None))

    @property
    def confirm_topic(self) -> str:
        return topics.bridge_cmd(self.base, "confirm_removal")

    # -- the loop --------------------------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """Everything due at `now`: queued messages, reconnects, schedules, polls, publishes."""
        self.handle_events(0)
        self._requests(now)
        if self.link.connections != self._connections and self.link.connected:
            self._reconnected()
        self.commands.run_schedules(self.last_tick or now, now)
        for frame_id in self.arrivals.take():
            self.commands.frame_online(frame_id, now)
        polled = self.next_poll is None or now >= self.next_poll
        if polled:
            self.poll(now)
        self.sending.expire(now.timestamp())
        self.manifests.publish(self.sync.lib, self.policy, now)
        self.state.publish(self.health(), force=polled)
        self.showing.publish_due(now)
        self.metrics.set("mqtt_connected", 1 if self.link.connected else 0)
        self.metrics.set("mqtt_publishes_total", self.link.messages_published)
        self.metrics.set("mqtt_bytes_total", self.link.bytes_published)
        self.last_tick = now

    def handle_events(self, timeout: float) -> int:
        """Process queued messages, waiting up to `timeout` for the first. Returns how many."""
        handled = 0
        try:
            while True:
                kind, value = self.events.get(timeout=timeout if handled == 0 else 0)
                handled += 1
                if kind == "ha_online":
                    self.hass.publish(force=True)
                elif kind == "shown":
                    self.showing.shown(*value)
                    self._board(*value)
                    self._frame_state(*value)
                elif kind == "confirm":
                    self.manifests.confirm(value)
                elif kind == "request":
                    self.requests.append(value)
        except queue.Empty:
            pass
        return handled

    def poll(self, now: datetime, full: bool | None = None) -> bool:
        """Poll the sources now (a full walk when due or asked); False when it failed."""
        self.next_poll = now + timedelta(seconds=self.config.bridge.poll_interval)
        kind = "full" if (full if full is not None else self.sync.full_due(now)) else "delta"
        try:
            if self.immich is not None and self._needs_me():
                me = self.immich.me().get("id")
                self.policy = self._with_me(me if isinstance(me, str) else None)
            self.sync.poll(now, full)
        except ImmichError as exc:
            self.last_error = exc.reason
            if isinstance(exc, ImmichAuthError):
                self.key_refused = f"Immich refuses the API key ({exc.status}): {exc.reason}"
            self.metrics.inc("poll_errors_total", reason=_reason(exc))
            self.metrics.inc("immich_errors_total", reason=_reason(exc))
            if self.outage.failed_poll(now, kind, _reason(exc), exc.reason):
                self.metrics.inc("immich_outages_total")
            self.metrics.set("immich_up", 0)
            return False
        finally:
            if self.immich is not None:
                self.metrics.set("immich_requests_total", self.immich.requests_made)
                self.metrics.set("immich_bytes_total", self.immich.bytes_received)
        self.last_error = None
        self.key_refused = None
        away = self.outage.good_poll(now)
        if away is not None:
            self.metrics.inc("immich_outage_seconds_total", away)
        self.metrics.set("immich_up", 1)
        self.last_poll_ok = now.timestamp()
        self.metrics.inc("polls_total", kind=kind)
        self.metrics.set("last_poll_timestamp_seconds", now.timestamp())
        return True

    def _requests(self, now: datetime) -> None:
        """Likes, hides and sends asked for since the last tick (Immich writes, guests)."""
        while self.requests:
            frame_id, what, payload = self.requests.pop(0)
            if what == "show":
                mirror = self.manifests.mirrors[frame_id]
                published = published_pictures(mirror.retained())
                self.sending.show(frame_id, payload, published, now.timestamp())
            elif what == "hold":
                self.actions.held(frame_id, payload)
            else:
                self.actions.run(frame_id, what, payload)

    def _frame_state(self, frame_id: str, payload: bytes) -> None:
        """What else a frame's state tells: its firmware version and boot id."""
        doc = parse_state(payload)
        if doc is None:
            return
        self.arrivals.state(frame_id, doc)
        if self.hass.frame_version(frame_id, doc.get("version")):
            self.hass.publish(force=False)

    # -- manifests -------------------------------------------------------------------------

    def _read_back(self) -> None:
        """Learn what the broker retains: manifests and pictures per frame, then discovery."""
        self.showing.forget()
        for frame_id in self.frames:
            self.manifests.mirrors[frame_id].clear()
            picture_topic = topics.picture(self.base, frame_id)
            guests = topics.guests(self.base, frame_id)
            # Not our own manifest publishes back: the mirror records them once acknowledged.
            self.link.subscribe(self.manifests.topics(frame_id), no_local=True)
            self.link.subscribe([picture_topic, guests])
            self.link.barrier()  # a frame at a time: the broker queues only so many messages
        self.hass.forget()
        self.link.subscribe([topics.discovery_filter(self.prefix)])
        if self.state.reading:  # once, at start: the holds a previous run saw
            self.link.subscribe([self.state.topic])
        self.link.barrier()
        if self.state.reading:
            self.state.reading = False
            for frame_id, since in self.state.restored.items():
                if frame_id in self.manifests.states:
                    self.manifests.states[frame_id].brake.restore(since)

    def _reconnected(self) -> None:
        log.info("reconnected to the broker; reading back what it holds")
        try:
            self._read_back()
            self.hass.publish(force=False)
        except MqttError as exc:
            log.warning("read-back after reconnect failed, will retry: %s", exc)
            return
        self._connections = self.link.connections

    # -- messages from the broker (paho's thread) ------------------------------------------

    def _on_message(self, msg: Message) -> None:
        if msg.topic == self.state.topic:
            self.state.seen(msg.payload)
            return
        if msg.topic == self.confirm_topic:
            if msg.retain:  # an old confirmation must not release tomorrow's hold
                self.commands.clear_retained(msg)
            elif msg.payload:
                self.events.put(("confirm", msg.payload.decode(errors="replace").strip()))
            return
        if self.hass.is_discovery(msg.topic):
            self.hass.seen(msg.topic, msg.payload)
            return
        if msg.topic in self.hass.status_topics:
            # Only a live birth message means Home Assistant just (re)started.
            if msg.payload == b"online" and not msg.retain:
                self.events.put(("ha_online", None))
            return
        parsed = topics.parse(self.base, msg.topic)
        if parsed is None:
            return
        frame_id, rest = parsed
        if rest.startswith("cmd/"):
            self.commands.seen(msg)
            what = rest[4:]
            # A retained one is being cleared (above), not asked for; an empty one is a clearing.
            live = msg.payload and not msg.retain and frame_id in self.frames
            if live and what in ("like", "hide", "show"):
                text = msg.payload.decode("utf-8", "replace")[:256]
                self.events.put(("request", (frame_id, what, text)))
            return
        if frame_id not in self.frames or self.manifests.seen(msg.topic, msg.payload):
            return
        if rest == "status":
            self.arrivals.status(frame_id, msg.payload, msg.retain)
        if rest == "picture":
            self.showing.retained(frame_id, msg.payload)
        elif rest == "guests":
            self.sending.retained(frame_id, msg.payload)
        elif rest == "event":
            picture = held_picture(msg.payload)
            if picture is not None:
                self.events.put(("request", (frame_id, "hold", picture)))
        elif rest == "state":
            self.events.put(("shown", (frame_id, msg.payload)))

    # -- the bridge's own commands and problems ----------------------------------------------

    def _board(self, frame_id: str, payload: bytes) -> None:
        """A frame's state: note its boot id, and warn when two boards share the frame id."""
        boot = boot_of(payload)
        now = (self.last_tick or datetime.now(UTC)).timestamp()
        if boot is not None and self.boards.seen(frame_id, boot, now):
            log.warning(
                "frame %s: two boards use this frame id (boot ids %s take turns); each takes "
                "the other's connection over. Give every board its own FRAME_ID and secret",
                frame_id,
                ", ".join(self.boards.boots(frame_id, now)),
            )
        self.metrics.set("frame_boards", self.boards.boards(frame_id, now), frame=frame_id)

    # -- health ----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """`/healthz` and the retained `<base>/bridge/state`: "ok" (200) unless the broker is
        away or Immich refuses the key (503); `reason` says which. An Immich that is merely
        down is `last_error`, not unhealthy: the manifests stay as they are and the next poll
        tries again. A held removal or a shared frame id shows per frame (docs/protocol.md)."""
        problems = [] if self.link.connected else ["not connected to the MQTT broker"]
        if self.key_refused is not None:
            problems.append(self.key_refused)
        now, holds = (self.last_tick or datetime.now(UTC)).timestamp(), self.manifests.holds()
        immich = None if self.immich is None else self.last_error is None
        return {
            "status": "degraded" if problems else "ok",
            "reason": "; ".join(problems) or None,
            "version": VERSION,
            "mqtt": self.link.connected,
            "immich": immich,
            "immich_reason": (self.key_refused or self.last_error) if immich is False else None,
            "last_poll": iso(self.last_poll_ok),
            "last_error": self.last_error,
            "poll_errors": int(self.metrics.total("poll_errors_total")),
            "frames_configured": len(self.frames),
            "frames": {
                f: frame_row(f, self.metrics, holds[f], self.boards, now) for f in self.frames
            },
        }


def main(config: Config) -> int:
    """Run the bridge until SIGTERM or SIGINT; 0 after a clean stop, 1 when it cannot start."""
    service = Service(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()
        service.wake()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        service.start(datetime.now(UTC), connect_timeout=None)
    except (StartupError, MqttError) as exc:
        service.close()
        if stop.is_set():
            return 0
        log.error("bridge cannot start: %s", exc)
        return 1
    service.run(stop)
    log.info("stopping")
    service.close()
    return 0

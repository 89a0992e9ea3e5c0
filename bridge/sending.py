"""Sending a photo to a frame: `show` with the id of an Immich photo outside the frame's
manifest makes it a guest of that frame for `bridge.guest_days`. Does I/O (Immich, MQTT).

The guest joins the frame's manifest at the end of the same tick; the frame, which remembers a
`show` it could not do yet, shows it as soon as it has downloaded it. The guests are kept
retained on `<base>/<frame>/guests` (`bridge.guests`) and read back at start; one whose time
has come leaves the manifest like any removed picture, without counting for the removal guard.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from bridge import guests as guests_mod
from bridge import pairing
from bridge.frames import FrameState
from bridge.metrics import Metrics
from bridge.mqtt import MqttError, MqttLink
from bridge.replies import Replies
from bridge.sources import UUID_RE, parse_asset
from common import manifest, topics
from common.config import Config
from common.immich import ImmichClient, ImmichError, ImmichNotFound

log = logging.getLogger(__name__)

ACK_TIMEOUT = 30.0
DAY = 86400


class Sending:
    def __init__(
        self,
        config: Config,
        link: MqttLink,
        states: dict[str, FrameState],
        replies: Replies,
        immich: ImmichClient | None,
        metrics: Metrics,
    ) -> None:
        self.metrics = metrics
        self.config = config
        self.link = link
        self.base = config.mqtt.base_topic
        self.states = states
        self.replies = replies
        self.immich = immich
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, guests_mod.Guest]] = {f: {} for f in states}

    def topics(self) -> list[str]:
        return [topics.guests(self.base, f) for f in self.states]

    def retained(self, frame_id: str, payload: bytes) -> None:
        """The broker's guests of a frame (paho's thread, read back at start)."""
        with self._lock:
            if frame_id in self._held:
                self._held[frame_id] = guests_mod.parse(payload)

    def show(self, frame_id: str, payload: str, published: Iterable[str], now: float) -> None:
        """A `show` the bridge saw: a photo not in the frame's manifest becomes a guest."""
        asset_id = payload.strip().lower()
        held = {a for pid in published for a in pairing.assets_of(pid)}
        if not UUID_RE.match(asset_id) or asset_id in held:
            return  # a photo the frame has (or a bad id: the frame itself reports that)
        self.send(frame_id, asset_id, now)

    def send(self, frame_id: str, asset_id: str, now: float) -> bool:
        state = self.states.get(frame_id)
        if state is None or self.immich is None:
            self.replies.error(frame_id, "send_failed", f"send {asset_id}: no Immich to ask")
            return False
        try:
            asset = parse_asset(self.immich.asset(asset_id))
        except ImmichNotFound:
            asset = None
        except ImmichError as exc:
            self.replies.error(frame_id, "send_failed", f"send {asset_id}: {exc.reason}")
            return False
        if asset is None or not asset.image or asset.trashed or asset.thumbhash is None:
            why = "is not a photo the key can see" if asset is None else "cannot be shown yet"
            self.replies.error(frame_id, "send_failed", f"send {asset_id}: it {why}")
            return False
        version = manifest.version(asset.checksum, asset.thumbhash, state.versions.profile_key)
        until = now + self.config.bridge.guest_days * DAY
        with self._lock:
            guest = guests_mod.Guest(version, now, until)
            held = guests_mod.add(self._held[frame_id], asset_id, guest)
        if not self._publish(frame_id, held):
            self.replies.error(frame_id, "send_failed", f"send {asset_id}: broker unavailable")
            return False
        state.set_guests(guests_mod.live(held, now))
        log.info("frame %s: %s sent, a guest until %d", frame_id, asset_id, until)
        self.replies.done(frame_id, "sent", None, picture=asset_id, until=int(until))
        self.metrics.set("frame_guests", len(state.guests), frame=frame_id)
        return True

    def expire(self, now: float) -> None:
        """Drop guests whose time has come; hand every frame its current guests."""
        for frame_id, state in self.states.items():
            with self._lock:
                held = self._held[frame_id]
            live = guests_mod.live(held, now)
            if live != held and not self._publish(frame_id, live):
                continue
            state.set_guests(live, known=held)  # one leaving is expected, not for the guard
            self.metrics.set("frame_guests", len(live), frame=frame_id)

    def _publish(self, frame_id: str, held: dict[str, guests_mod.Guest]) -> bool:
        try:
            self.link.publish_all(
                [(topics.guests(self.base, frame_id), guests_mod.payload(held))],
                retain=True,
                timeout=ACK_TIMEOUT,
            )
        except MqttError as exc:
            log.warning("frame %s: guests not published: %s", frame_id, exc)
            return False
        with self._lock:
            self._held[frame_id] = held
        return True

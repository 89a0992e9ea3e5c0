"""The `picture` topic over time: when a frame's state names a new picture, publish what Home
Assistant needs about it (signed URL, date, place, people, albums). Does I/O (Immich, MQTT).

The retained payloads are read back at start, so a restart re-publishes nothing while the
frames show the same pictures; a URL is re-signed before it expires. Metadata failures are
retried after `poll_interval`, not on every tick.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bridge import pairing, picture
from bridge.folders import folder_meta
from bridge.metrics import Metrics
from bridge.mqtt import MqttError, MqttLink
from bridge.sources import Policy
from bridge.sync import Sync
from common import topics
from common.config import Config, FrameConfig
from common.immich import ImmichAuthError, ImmichClient, ImmichError, ImmichNotFound

log = logging.getLogger(__name__)

ACK_TIMEOUT = 30.0


class Showing:
    """Which picture each frame shows, and the picture payload the broker holds for it."""

    def __init__(
        self,
        config: Config,
        sync: Sync,
        link: MqttLink,
        metrics: Metrics,
        tz: tzinfo,
        immich: ImmichClient | None = None,
    ) -> None:
        self.config = config
        self.sync = sync
        self.link = link
        self.metrics = metrics
        self.tz = tz
        self.immich = immich
        self.policy: Policy | None = None
        self._lock = threading.Lock()
        self._published: dict[str, picture.Shown | None] = {}
        self._current: dict[str, str] = {}
        self._retry_at: dict[str, datetime] = {}

    def retained(self, frame_id: str, payload: bytes) -> None:
        """The broker's picture payload for a frame (paho's thread)."""
        with self._lock:
            self._published[frame_id] = picture.parse_published(payload)

    def forget(self) -> None:
        """Forget the broker's picture payloads before reading them back again."""
        with self._lock:
            self._published.clear()

    def shown(self, frame_id: str, state: bytes) -> None:
        """A frame's state arrived; remember the picture it names."""
        pid = picture.state_picture(state)
        if pid is not None:
            with self._lock:
                if self._current.get(frame_id) != pid:
                    self._retry_at.pop(frame_id, None)
                self._current[frame_id] = pid

    def current(self, frame_id: str) -> str | None:
        with self._lock:
            return self._current.get(frame_id)

    def publish_due(self, now: datetime) -> None:
        """Publish the payload of every frame whose shown picture is not what the broker has."""
        with self._lock:
            due = [
                (f, pid)
                for f, pid in self._current.items()
                if picture.needs_publish(self._published.get(f), pid, now.timestamp())
                and now >= self._retry_at.get(f, now)
            ]
        for frame_id, pid in due:
            frame = self.config.frame(frame_id)
            if frame is not None:
                self._publish(frame, pid, now)

    def _publish(self, frame: FrameConfig, pid: str, now: datetime) -> None:
        try:
            payload = self.payload(frame, pid, now)
        except ImmichError as exc:
            self.metrics.inc("immich_errors_total", reason="picture")
            log.warning("frame %s: no metadata for picture %s yet: %s", frame.id, pid, exc.reason)
            self._retry_later(frame.id, now)
            return
        try:
            self.link.publish_all(
                [(topics.picture(self.config.mqtt.base_topic, frame.id), payload)],
                retain=True,
                timeout=ACK_TIMEOUT,
            )
        except MqttError as exc:
            log.warning("frame %s: picture topic not published: %s", frame.id, exc)
            self._retry_later(frame.id, now)
            return
        self.metrics.inc("picture_publishes_total", frame=frame.id)
        with self._lock:
            self._published[frame.id] = picture.parse_published(payload)

    def _retry_later(self, frame_id: str, now: datetime) -> None:
        with self._lock:
            self._retry_at[frame_id] = now + timedelta(seconds=self.config.bridge.poll_interval)

    def payload(self, frame: FrameConfig, pid: str, now: datetime) -> bytes:
        """The picture payload for `pid` on `frame` (asks Immich for its metadata)."""
        metas = [self._meta(asset_id) for asset_id in pairing.assets_of(pid)]
        r = self.config.renderer
        url = picture.picture_url(
            r.public_url, r.url_key, frame.id, pid, now.timestamp(), frame.secret is not None
        )
        return picture.payload(pid, url, metas)

    def _meta(self, asset_id: str) -> dict[str, Any]:
        asset = self.sync.lib.assets.get(asset_id)
        if asset is not None and asset.path:
            return folder_meta(asset.path, self.tz)
        if self.immich is None:
            return picture.empty_meta()
        try:
            dto = self.immich.asset(asset_id)
        except ImmichNotFound:
            return picture.empty_meta()
        return picture.asset_meta(dto, self._albums_of(asset_id))

    def _albums_of(self, asset_id: str) -> list[dict[str, Any]]:
        """The albums holding an asset; none when the key may not read albums."""
        assert self.immich is not None
        try:
            # GET /albums?assetId= is the one call that answers this; the client has no
            # public method for the filter yet.
            return self.immich.albums_of(asset_id)
        except (ImmichAuthError, ImmichNotFound):
            return []

"""The bridge's own retained state, `<base>/bridge/state`: the document its `/healthz` serves
(`Service.health()`), so Home Assistant can show a held removal or a shared frame id as a
problem. Does I/O through `MqttLink`.

Published retained after every poll and when it changes: at once when a frame's row changes
(a hold, a shared id), else at most once a second (a flapping broker link, say). Read back once
at start: the start times of the holds a previous run saw (`held_since`), so a restart neither
resets nor shortens a hold (`bridge.brake`).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from bridge.boards import Boards
from bridge.metrics import Metrics
from bridge.mqtt import MqttError, MqttLink
from common import topics

log = logging.getLogger(__name__)


def _version() -> str:
    try:
        return importlib.metadata.version("titanoframe")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


VERSION = _version()

MIN_GAP = 1.0  # seconds between two publishes


def iso(when: float | None) -> str | None:
    """Unix time as ISO 8601 UTC (`2025-11-23T09:00:00Z`); None stays None."""
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def unix(value: object) -> float | None:
    """An ISO 8601 time as unix time; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def frame_row(
    frame: str,
    metrics: Metrics,
    hold: tuple[int, float | None, float | None],
    boards: Boards,
    now: float,
) -> dict[str, Any]:
    """A frame's row of the state: pictures, its held removal, the boards using its id."""
    return {
        "pictures": int(metrics.get("frame_pictures", frame=frame)),
        "held_removals": hold[0],
        "held_since": iso(hold[1]),
        "held_until": iso(hold[2]),
        "boards": boards.boards(frame, now),
        "shared_id": boards.shared(frame, now),
    }


def held_since(payload: bytes) -> dict[str, float]:
    """{frame: start of its hold} from a retained bridge state; {} when there is none."""
    try:
        doc = json.loads(payload.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        return {}
    frames = doc.get("frames") if isinstance(doc, dict) else None
    if not isinstance(frames, dict):
        return {}
    found = {}
    for frame, row in frames.items():
        since = unix(row.get("held_since")) if isinstance(row, dict) else None
        if isinstance(frame, str) and since is not None:
            found[frame] = since
    return found


class BridgeState:
    """Publishes the bridge's state when it changes; reads the last one back at start."""

    def __init__(self, link: MqttLink, base: str) -> None:
        self.link = link
        self.topic = topics.bridge_state(base)
        self.reading = True  # until the read-back at start is over
        self.restored: dict[str, float] = {}
        self._last: bytes | None = None
        self._at = float("-inf")
        self._frames: object = None

    def seen(self, payload: bytes) -> None:
        """The retained state (paho's thread); only the one read back at start counts."""
        if self.reading and payload:
            self.restored = held_since(payload)

    def publish(self, doc: dict[str, Any], force: bool = False) -> None:
        """Publish `doc` retained unless it is what was published last (or came too soon)."""
        payload = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        if payload == self._last:
            return
        frames = doc.get("frames")
        now = time.monotonic()
        if not (force or frames != self._frames or now - self._at >= MIN_GAP):
            return
        if not self.link.connected:
            return
        try:
            self.link.publish(self.topic, payload, retain=True)
        except MqttError as exc:
            log.warning("bridge state not published, will retry: %s", exc)
            return
        self._last, self._at, self._frames = payload, now, frames

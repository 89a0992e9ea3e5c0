"""Frames coming online, as the bridge sees them on their `status` and `state` topics. Pure
apart from a lock (messages arrive on paho's thread, the loop takes the result).

A frame has come online when its `status` turns `online` live (not the retained value the
broker hands over at subscription: that is old news), or when its state names a new boot id
(`boot`, protocol §3) without such a status — a reboot quicker than the broker noticed. One
arrival is counted once: the state that follows a live `online` does not count again.
"""

from __future__ import annotations

import json
import threading
from typing import Any

ONLINE = b"online"
BOOT_MAX = 64


def parse_state(payload: bytes) -> dict[str, Any] | None:
    """A frame's state JSON as a dict; None when it is not a JSON object."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):  # a frame may send deep nesting
        return None
    return doc if isinstance(doc, dict) else None


class Arrivals:
    """Which frames came online since the loop last asked."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._boots: dict[str, str] = {}
        self._announced: set[str] = set()  # a live `online` not yet followed by a state
        self._due: list[str] = []

    def status(self, frame_id: str, payload: bytes, retained: bool) -> None:
        """A frame's status message."""
        if retained or payload != ONLINE:
            return
        with self._lock:
            self._announced.add(frame_id)
            self._arrived(frame_id)

    def state(self, frame_id: str, doc: dict[str, Any]) -> None:
        """A frame's state document."""
        boot = doc.get("boot")
        if not isinstance(boot, str) or not boot or len(boot) > BOOT_MAX:
            return
        with self._lock:
            before = self._boots.get(frame_id)
            self._boots[frame_id] = boot
            announced = frame_id in self._announced
            self._announced.discard(frame_id)
            if before is not None and before != boot and not announced:
                self._arrived(frame_id)

    def _arrived(self, frame_id: str) -> None:
        if frame_id not in self._due:
            self._due.append(frame_id)

    def take(self) -> list[str]:
        """The frames that came online since the last call, in order, each once."""
        with self._lock:
            due, self._due = self._due, []
        return due

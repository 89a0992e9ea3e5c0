"""Boards sharing a frame id: each boot of a frame puts a random boot id into its state (protocol
§3); when two different boot ids alternate on one frame's state within a window, two boards
use the same `FRAME_ID` and keep taking each other's connection over. Pure: `now` passed in.

A reboot changes the boot id once (A then B) and is not a shared id; A, B and A again within
`WINDOW` seconds is.
"""

from __future__ import annotations

import json
import re

WINDOW = 600.0
KEEP = 16  # sightings kept per frame
BOOT_RE = re.compile(r"\A[0-9a-f]{8}\Z")


def boot_of(payload: bytes) -> str | None:
    """The boot id of a frame's state message; None when it has none (an older frame)."""
    try:
        doc = json.loads(payload.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    boot = doc.get("boot") if isinstance(doc, dict) else None
    return boot if isinstance(boot, str) and BOOT_RE.match(boot) else None


class Boards:
    """Boot ids seen per frame, newest last, one entry per change of boot id."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._seen: dict[str, list[tuple[float, str]]] = {}

    def _recent(self, frame: str, now: float) -> list[tuple[float, str]]:
        return [row for row in self._seen.get(frame, []) if now - row[0] < self.window]

    def seen(self, frame: str, boot: str, now: float) -> bool:
        """A state message from `frame` with `boot`; True when it shows a shared id anew."""
        rows = self._recent(frame, now)
        before = self.shared(frame, now)
        if rows and rows[-1][1] == boot:
            rows[-1] = (now, boot)
        else:
            rows.append((now, boot))
        self._seen[frame] = rows[-KEEP:]
        return not before and self.shared(frame, now)

    def boots(self, frame: str, now: float) -> list[str]:
        """The distinct boot ids seen lately, oldest first."""
        return list(dict.fromkeys(boot for _, boot in self._recent(frame, now)))

    def boards(self, frame: str, now: float) -> int:
        """How many boards (distinct boot ids) used the frame id lately."""
        return len(self.boots(frame, now))

    def shared(self, frame: str, now: float) -> bool:
        """A boot id came back after another one: two boards alternate."""
        order = [boot for _, boot in self._recent(frame, now)]
        return len(set(order)) < len(order)

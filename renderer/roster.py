"""What each frame may fetch: its manifest summary and pages, as read from MQTT. Pure state.

Messages are applied one at a time (`apply`); lookups (`version`) find a picture's page from
its id and the summary's `width`, so there is no merged copy to rebuild when a page changes and
a 45,000-picture manifest loads in one pass. Only shards the current summary names count, so
pages left over from an older width, or cleared while the service was away, are never served.
A malformed or oversized message, or a page holding ids of another shard, is rejected and the
previous state kept. Thread-safe: the MQTT thread writes while the HTTP loop reads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from common.manifest import (
    PAGE_LIMIT,
    SUMMARY_LIMIT,
    Summary,
    parse_page,
    parse_summary,
    shard_of,
)


@dataclass
class _Frame:
    summary: Summary | None = None
    pages: dict[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Applied:
    """Outcome of one message: rejected (malformed), or accepted with the entries it added."""

    accepted: bool
    added: Mapping[str, str] = field(default_factory=dict)
    summary_changed: bool = False


REJECTED = Applied(False)


def _belongs(page: Mapping[str, str], shard: str) -> bool:
    """Every id of the page falls in its shard (docs/protocol.md §2).

    The width is read from the shard's name rather than the current summary: the bridge
    publishes a width change's pages before the summary that announces it. A stray id would be
    pre-rendered yet never served, as `version` looks it up under its own shard.
    """
    width = 0 if shard == "all" else len(shard)
    return all(shard_of(pid, width) == shard for pid in page)


class Roster:
    """Manifests of the configured frames; messages for other frames are ignored."""

    def __init__(self, frames: Iterable[str]) -> None:
        self._frames = {f: _Frame() for f in frames}
        self._lock = threading.Lock()

    def knows(self, frame: str) -> bool:
        return frame in self._frames

    def apply(self, frame: str, shard: str | None, payload: bytes) -> Applied:
        """Apply the summary (`shard` None) or one page of `frame`. Empty payload = cleared."""
        state = self._frames.get(frame)
        if state is None:
            return Applied(True)
        # The bridge never publishes more (docs/protocol.md §2): anything bigger is not a
        # manifest, and parsing it would only grow this process.
        if len(payload) > (SUMMARY_LIMIT if shard is None else PAGE_LIMIT):
            return REJECTED
        if shard is None:
            return self._apply_summary(state, payload)
        page = parse_page(payload)
        if page is None or not _belongs(page, shard):
            return REJECTED
        with self._lock:
            old = state.pages.get(shard, {})
            if page:
                state.pages[shard] = page
            else:
                state.pages.pop(shard, None)
        return Applied(True, {pid: v for pid, v in page.items() if old.get(pid) != v})

    def _apply_summary(self, state: _Frame, payload: bytes) -> Applied:
        summary = None if not payload else parse_summary(payload)
        if payload and summary is None:
            return REJECTED
        with self._lock:
            changed = summary != state.summary
            state.summary = summary
        return Applied(True, summary_changed=changed)

    def version(self, frame: str, picture_id: str) -> str | None:
        """The picture's version in the frame's current manifest, or None when not in it."""
        state = self._frames.get(frame)
        if state is None:
            return None
        with self._lock:
            summary = state.summary
            if summary is None:
                return None
            shard = shard_of(picture_id, summary.width)
            if shard not in summary.shards:
                return None
            return state.pages.get(shard, {}).get(picture_id)

    def summary(self, frame: str) -> Summary | None:
        state = self._frames.get(frame)
        return None if state is None else state.summary

    def entries(self, frame: str) -> dict[str, str]:
        """Every picture of the frame's current manifest: {picture id: version}."""
        state = self._frames.get(frame)
        if state is None:
            return {}
        with self._lock:
            if state.summary is None:
                return {}
            shards = [state.pages.get(s, {}) for s in state.summary.shards]
        return {pid: v for page in shards for pid, v in page.items()}

    def count(self, frame: str) -> int:
        state = self._frames.get(frame)
        if state is None:
            return 0
        with self._lock:
            if state.summary is None:
                return 0
            return sum(len(state.pages.get(s, {})) for s in state.summary.shards)

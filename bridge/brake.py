"""The removal brake of one frame: when a poll would take away more than `max_removal` of the
photos its published manifest holds, the manifest stays as it is and the drop is held. Pure:
values in, values out, `now` passed in.

A held drop goes out only when
- a person confirms it (`confirm`: the CLI's `confirm-removal` or the MQTT command
  `<base>/bridge/cmd/confirm_removal`), or
- `removal_hold` seconds have passed since it was first seen *and* a full walk that started
  after that still finds it.
So an Immich that answers "nothing" (a restore, a wrong user's key, a bug) never empties a
frame by itself within a day, and an Immich hiccup that heals is never published at all.

Also a drop: a source of the frame that answered with pictures and now answers empty (or whose
name Immich no longer knows), whatever share of the frame it held.

Not a drop: anything that follows a change of the frame's configured sources. The manifest
summary carries `src`, a digest of the source config it was built from (`sources_digest`); when
it differs from the config now, the person changed the config and the change goes out at once.
A summary without `src` (written before the field existed) counts as unchanged.

Restarts: the hold's start time is kept in the bridge's retained state (`<base>/bridge/state`)
and handed back with `restore` at start, so a restarting bridge neither resets nor shortens the
time; it sees the drop again against the retained manifest, and the first full walk after the
restart started after the drop was first seen, so it counts.
"""

from __future__ import annotations

import binascii
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bridge import pairing
from bridge.asset import Asset
from bridge.sources import Policy
from bridge.sync import Library
from common import manifest
from common.config import FrameConfig

log = logging.getLogger(__name__)


def sources_digest(frame: FrameConfig, include_archived: bool, include_partners: bool) -> str:
    """8 hex digits naming the frame's source config: sources, exclusions and the bridge's
    include_* policy. The Immich URL and key are left out: a wrong key is an outage."""
    doc = [
        [[s.kind, str(s.value), s.stacks] for s in frame.sources],
        [[e.kind, e.value] for e in frame.exclude],
        [include_archived, include_partners],
    ]
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    return "%08x" % (binascii.crc32(text.encode()) & 0xFFFFFFFF)


def photos_of(previous: Iterable[str]) -> set[str]:
    """The photo ids behind published picture ids (a portrait pair holds two)."""
    return {a for pid in previous for a in pairing.assets_of(pid)}


@dataclass(frozen=True)
class Hold:
    """A held drop: first seen at `since` (unix time), `removed` of `before` photos; `walk` is
    the count of full walks then (a later one confirms, with time)."""

    since: float
    removed: int
    before: int
    walk: int


class Brake:
    """Holds one frame's mass removals until a person or time confirms them."""

    def __init__(self, frame_id: str, max_removal: float, hold_seconds: float) -> None:
        self.frame_id = frame_id
        self.max_removal = max_removal
        self.hold_seconds = hold_seconds
        self.hold: Hold | None = None
        self.confirmed = False
        self.epoch = 0  # bumped by a confirmation, so a settled frame is evaluated again
        self._restored: float | None = None
        # Sources that answered with pictures (as of the last manifest that went out).
        self._filled: set[tuple[str, str]] = set()
        self._now_filled: set[tuple[str, str]] = set()

    @property
    def held_until(self) -> float | None:
        """When the hold may end by itself (a full walk is needed too)."""
        return None if self.hold is None else self.hold.since + self.hold_seconds

    def restore(self, since: float | None) -> None:
        """The start of a hold a previous run of the bridge saw (from its retained state)."""
        self._restored = since

    def confirm(self) -> bool:
        """A person confirms the held drop; False when nothing is held."""
        if self.hold is None:
            return False
        log.warning("frame %s: removal of %d photos confirmed", self.frame_id, self.hold.removed)
        self.confirmed = True
        self.epoch += 1
        return True

    def settled(self) -> None:
        """The manifest went out: whatever was held is over."""
        self.hold, self.confirmed, self._restored = None, False, None
        self._filled = self._now_filled

    def judge(
        self,
        frame: FrameConfig,
        lib: Library,
        policy: Policy,
        retained: manifest.Retained,
        previous: Iterable[str],
        assets: Mapping[str, Asset],
        now: float,
    ) -> int:
        """`check` for a frame's selection `assets` against its published `previous`."""
        summary = manifest.parse_summary(retained.summary) if retained.summary else None
        digest = sources_digest(frame, policy.include_archived, policy.include_partners)
        changed = summary is not None and summary.sources not in (None, digest)
        kept = assets.keys() | lib.expired
        return self.check(photos_of(previous), kept, _counts(frame, lib), changed, _walks(lib), now)

    def judge_patch(
        self,
        frame: FrameConfig,
        lib: Library,
        policy: Policy,
        src: str | None,
        counts: tuple[int, Iterable[str]],
        now: float,
    ) -> int:
        """`judge` for a patched change, from what the last build knows instead of the whole
        published manifest: the same decision for what it costs to read the photos removed.

        `src`: the digest the published summary carries; `counts`: (photos the published
        manifest holds, photos the change takes out of the frame's selection). The broker
        holds exactly the last build, whose photos are the selection before the change, so
        these are `before` and `before - kept` of `check`."""
        before, gone = counts
        digest = sources_digest(frame, policy.include_archived, policy.include_partners)
        changed = src not in (None, digest)
        removed = sum(1 for asset_id in gone if asset_id not in lib.expired)
        return self.decide(before, removed, _counts(frame, lib), changed, _walks(lib), now)

    def observe(self, frame: FrameConfig, lib: Library) -> None:
        """A change that removes nothing: which sources have photos now, as `judge` notes it,
        so a source that fills by such changes and empties later is seen to empty."""
        self._now_filled = {k for k, n in _counts(frame, lib).items() if n > 0}

    def check(
        self,
        before: set[str],
        kept: Iterable[str],
        sources: Mapping[tuple[str, str], int],
        changed: bool,
        walks: tuple[int, float | None],
        now: float,
    ) -> int:
        """How many removals are held back (0 when the change may go out).

        `before`: photos of the published manifest; `kept`: photos still there or leaving as
        expected; `sources`: photos per configured source now; `changed`: the source config
        differs from the one the published manifest was built from; `walks`: how many full
        walks this run made, and when the last one started.
        """
        removed = len(before - set(kept))
        return self.decide(len(before), removed, sources, changed, walks, now)

    def decide(
        self,
        before: int,
        removed: int,
        sources: Mapping[tuple[str, str], int],
        changed: bool,
        walks: tuple[int, float | None],
        now: float,
    ) -> int:
        """`check` from counts: `before` photos published, `removed` of them going."""
        emptied = sorted(k for k, n in sources.items() if n == 0 and k in self._filled)
        self._now_filled = {k for k, n in sources.items() if n > 0}
        big = removed > self.max_removal * before or (removed > 0 and bool(emptied))
        if not before or not big or changed:
            self._filled = self._now_filled
            self._release(removed, changed and big)
            return 0
        if self.hold is None:
            self._start(removed, before, now, emptied, walks)
            return removed
        self.hold = Hold(self.hold.since, removed, before, self.hold.walk)
        if self.confirmed:
            return 0
        if now < self.hold.since + self.hold_seconds or walks[0] <= self.hold.walk:
            return removed
        log.warning(
            "frame %s: the removal of %d photos was held %gs and a full walk still finds it; "
            "publishing it",
            self.frame_id,
            removed,
            self.hold_seconds,
        )
        return 0

    def _start(
        self,
        removed: int,
        before: int,
        now: float,
        emptied: list[tuple[str, str]],
        walks: tuple[int, float | None],
    ) -> None:
        since, walk = now, walks[0]
        if self._restored is not None:
            since = min(self._restored, now)  # a clock set back must not hold it longer
            if walks[1] is not None and walks[1] > since:
                walk -= 1  # this run's last walk started after a previous run saw the drop
        self._restored = None
        self.hold = Hold(since, removed, before, walk)
        self.confirmed = False
        why = f"source {emptied[0][0]} {emptied[0][1]!r} is empty now" if emptied else (
            f"over max_removal {self.max_removal:g}"
        )  # fmt: skip
        log.warning(
            "frame %s: this poll would remove %d of its %d photos (%s); holding the manifest "
            "for %gs and a full walk, or until confirmed (confirm-removal %s)",
            self.frame_id,
            removed,
            before,
            why,
            self.hold_seconds,
            self.frame_id,
        )

    def _release(self, removed: int, by_config: bool) -> None:
        self._restored = None
        if by_config:
            log.info(
                "frame %s: the sources in the config changed; removing %d photos at once",
                self.frame_id,
                removed,
            )
        if self.hold is not None and not by_config:
            log.info("frame %s: the held removal is no longer seen", self.frame_id)
        self.hold, self.confirmed = None, False


def _counts(frame: FrameConfig, lib: Library) -> dict[tuple[str, str], int]:
    """Photos per configured source now (memories empty out by themselves, day by day)."""
    counts = {}
    for s in frame.sources:
        if s.kind != "memories":
            key = lib.key(s.kind, s.value)
            counts[(s.kind, str(s.value))] = len(lib.members.get(key, ())) if key else 0
    return counts


def _walks(lib: Library) -> tuple[int, float | None]:
    return lib.walks, lib.walked_at.timestamp() if lib.walked_at is not None else None

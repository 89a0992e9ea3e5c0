"""The frames' manifests on the broker: read back, rebuilt when the library changes, and
published where they differ. Does I/O (through `MqttLink`); the decisions are `bridge.frames`.

Publishes are QoS 1, retained, and waited for: only acknowledged steps update what the bridge
believes the broker holds, so a failed publish is simply planned again on the next tick.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Iterable
from datetime import datetime

from bridge.frames import FrameState, Mirror, Outcome, PageCache, Versions
from bridge.metrics import Metrics
from bridge.mqtt import MqttError, MqttLink
from bridge.selection import Selection
from bridge.sources import Policy
from bridge.sync import Library
from common import manifest, topics
from common.config import FrameConfig

log = logging.getLogger(__name__)

ACK_TIMEOUT = 30.0


class Manifests:
    """Every configured frame's manifest state and its mirror of the broker."""

    def __init__(
        self,
        link: MqttLink,
        base: str,
        frames: Iterable[FrameConfig],
        public_url: str,
        max_removal: float,
        metrics: Metrics,
        removal_hold: float = 0.0,
    ) -> None:
        self.link = link
        self.base = base
        self.metrics = metrics
        url = public_url.rstrip("/")
        versions: dict[str, Versions] = {}  # one per render profile: frames share their hashes
        selections: dict[object, Selection] = {}  # one per set of sources, likewise
        self.pages = PageCache()  # published pages parsed, for every frame
        self.states = {}
        for f in frames:
            key = manifest.profile_key(f.image)
            shared = versions.setdefault(key, Versions(key))
            selection = selections.setdefault((f.sources, f.exclude), Selection())
            pictures = f"{url}/v1/frames/{f.id}/pictures/"
            self.states[f.id] = FrameState(
                f,
                pictures,
                max_removal,
                removal_hold,
                versions=shared,
                selection=selection,
                pages=self.pages,
            )
        self.mirrors = {frame_id: Mirror() for frame_id in self.states}
        self.heard = 0  # manifest messages the broker sent (its own publishes are not among them)
        self._released = (-1, -1)

    def topics(self, frame_id: str) -> list[str]:
        """The subscriptions that read a frame's manifest back."""
        summary = topics.manifest(self.base, frame_id)
        return [summary, f"{summary}/+"]

    def seen(self, topic: str, payload: bytes) -> bool:
        """A manifest message from the broker (paho's thread); False when it is not one."""
        where = topics.parse_manifest(self.base, topic)
        if where is None or where[0] not in self.mirrors:
            return False
        self.heard += 1
        self.mirrors[where[0]].put(where[1], payload)
        return True

    def publish(self, lib: Library, policy: Policy, now: datetime) -> None:
        """Rebuild what changed and publish the difference, frame by frame."""
        if not self.link.connected:
            return  # nothing could be published; the change waits for the broker
        self._publish(lib, policy, now)
        self.pages.sweep()
        if (lib.generation, lib.walks) != self._released:
            # A walk or a change has come and gone, with its temporaries.
            self._released = (lib.generation, lib.walks)
            release_memory()

    def _publish(self, lib: Library, policy: Policy, now: datetime) -> None:
        for frame_id, state in self.states.items():
            mirror = self.mirrors[frame_id]
            version = mirror.version
            outcome = state.evaluate(lib, policy, mirror.retained(), version, int(now.timestamp()))
            self._gauges(frame_id, outcome)
            if outcome.whole and outcome.built is not None:
                # A patch's pages are the last build's but the ones it wrote (published as
                # ours below): only a rebuild may find the mirror holding copies of its own.
                mirror.adopt(outcome.built.pages)
            if outcome.plan is None:
                continue
            try:
                messages = outcome.plan.messages(self.base, frame_id)
                self.link.publish_all(messages, retain=True, timeout=ACK_TIMEOUT)
            except MqttError as exc:
                self.metrics.inc("mqtt_errors_total")
                log.error("frame %s: manifest not published, will retry: %s", frame_id, exc)
                continue
            for step in outcome.plan.steps:
                mirror.put(step.shard, step.payload, ours=True)
            state.settle(lib, mirror.version)
            self._gauges(frame_id, outcome)  # a released hold is over now
            self.metrics.inc("manifest_publishes_total", frame=frame_id)
            plan = outcome.plan
            log.info(
                "frame %s: published %d pages%s, cleared %d (%d pictures)",
                frame_id,
                plan.pages_published,
                " and the summary" if plan.summary_published else "",
                plan.pages_cleared,
                outcome.built.count if outcome.built else 0,
            )

    def confirm(self, which: str) -> list[str]:
        """A person confirms the held removal of frame `which` (or `all`): the frames released
        (published at the next tick)."""
        if which != "all" and which not in self.states:
            log.warning("confirm_removal: no frame %r is configured (frames: %s, or all)",
                        which[:40], ", ".join(self.states))  # fmt: skip
            return []
        states = self.states.values() if which == "all" else [self.states[which]]
        done = [s.frame.id for s in states if s.brake.confirm()]
        for frame_id in done:
            self.metrics.inc("removals_confirmed_total", frame=frame_id)
        if not done:
            log.info("confirm_removal %s: no removal is held", which)
        return done

    def holds(self) -> dict[str, tuple[int, float | None, float | None]]:
        """{frame: (photos held back, held since, held until)} as unix times."""
        found = {}
        for frame_id, state in self.states.items():
            hold = state.brake.hold
            since = None if hold is None else hold.since
            found[frame_id] = (0 if hold is None else hold.removed, since, state.brake.held_until)
        return found

    def _gauges(self, frame_id: str, outcome: Outcome) -> None:
        # From the brake, not the outcome: a frame whose inputs did not change is not evaluated
        # again, and its hold goes on.
        held, since, until = self.holds()[frame_id]
        self.metrics.set("held_removals", held, frame=frame_id)
        self.metrics.set("held_removal_since_seconds", since or 0, frame=frame_id)
        self.metrics.set("held_removal_until_seconds", until or 0, frame=frame_id)
        if outcome.built is not None:
            self.metrics.set("frame_assets", outcome.assets, frame=frame_id)
            self.metrics.set("frame_pictures", outcome.built.count, frame=frame_id)
            self.metrics.set("dropped_pictures", outcome.built.dropped, frame=frame_id)


def _trimmer() -> object:
    # The process's own symbols hold the C library's: no `ctypes.util.find_library`, which
    # runs `ldconfig` and costs the bridge a megabyte of imports for one name.
    try:
        return getattr(ctypes.CDLL(None), "malloc_trim", None)
    except OSError:
        return None


_TRIM = _trimmer()


def release_memory() -> None:
    """Hand the heap freed by a full rebuild back to the system (glibc's `malloc_trim`).

    A walk of 30,000 photos, or a rebuild of their manifest, churns through tens of MiB of
    short-lived objects among the few it keeps; without this the bridge's RSS stays near that
    peak. Costs a fraction of a millisecond. Elsewhere than glibc a no-op."""
    if callable(_TRIM):
        _TRIM(0)

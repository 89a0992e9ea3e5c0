"""The frame's inbox: messages that arrived while the app was busy, merged by topic. Pure.

A burst (Home Assistant's slider, a script in a loop, someone's `mosquitto_pub` flood) must
neither drop what matters nor fill the heap, so the inbox holds one entry per topic, never
more than LIMIT topics:

- the summary: the latest one replaces any before it, and is never dropped;
- a setting or any other command: its latest payload (the value the sender ended on);
- `next` and `previous`: counted, at most STEP_CAP each (a slide per step; more is a flood).

What was merged away or dropped is counted, and a burst (more than LIMIT messages between two
takes) is said once, as an `overflow` error in `problems` for the app to report. Entries come
out commands first, in the order their topics first arrived, then the summary.
"""

from .errors import FrameError
from .topics import Topics

try:  # noqa: SIM105 -- the board has no contextlib
    Payload = bytes | bytearray | memoryview
except TypeError:  # the board has no `|` on types; it never evaluates annotations
    pass

LIMIT = 16  # topics at once
STEP_CAP = 5  # next or previous steps kept, each
STEPS = ("next", "previous")


class Inbox:
    """Payloads are kept as they came: bytes, bytearray, or a view of the link's page buffer."""

    def __init__(self, topics: Topics, problems: list[FrameError]) -> None:
        self._topics = topics
        self._problems = problems
        self._order: list[str] = []  # command topics, as they first arrived
        self._latest: dict[str, Payload] = {}  # topic -> payload (steps: the last one)
        self._steps: dict[str, int] = {}
        self._summary: Payload | None = None
        self.arrived = 0  # since the last take
        self.merged = 0  # replaced by a later one of the same topic
        self.dropped = 0  # over LIMIT topics, or over STEP_CAP steps

    def put(self, topic: str, payload: Payload) -> None:
        self.arrived += 1
        if topic == self._topics.manifest:
            if self._summary is not None:
                self.merged += 1
            self._summary = payload
            return
        name = self._topics.command_of(topic)
        if topic in self._latest:
            if name in STEPS and self._steps[topic] < STEP_CAP:
                self._steps[topic] += 1
            elif name in STEPS:
                self.dropped += 1
            else:
                self.merged += 1
            self._latest[topic] = payload
        elif len(self._order) >= LIMIT:
            self.dropped += 1
        else:
            self._order.append(topic)
            self._latest[topic] = payload
            self._steps[topic] = 1

    def __bool__(self) -> bool:
        return bool(self._order) or self._summary is not None

    def __contains__(self, topic: str) -> bool:
        return topic in self._latest or (
            topic == self._topics.manifest and self._summary is not None
        )

    def take(self) -> list[tuple[str, Payload]]:
        """Everything waiting, in processing order; the inbox is empty afterwards."""
        out: list[tuple[str, Payload]] = []
        for topic in self._order:
            payload = self._latest[topic]
            out.extend([(topic, payload)] * self._steps[topic])
        if self._summary is not None:
            out.append((self._topics.manifest, self._summary))
        self._order, self._latest, self._steps, self._summary = [], {}, {}, None
        if self.arrived > LIMIT:
            detail = f"{self.arrived} messages at once: {self.merged} merged into a later one"
            self._problems.append(FrameError("overflow", f"{detail}, {self.dropped} dropped"))
        self.arrived = self.merged = self.dropped = 0
        return out

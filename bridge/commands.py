"""The bridge's part in the frames' `cmd/` topics: it sends the scheduled commands and clears
commands someone retained by mistake. Does I/O (through `MqttLink`); what is due comes from
`bridge.schedule` (pure).

A scheduled command sent while a frame is away (rebooting, out of Wi-Fi) is lost, so whenever
a frame comes online the schedule's current state (the latest step of each scheduled command)
is sent again. A manual change holds until the next scheduled step: a command someone else
sent on a scheduled topic since the last step, with another value, is not overridden.

Scheduled commands are ordinary commands: QoS 1, never retained. A retained command would be
replayed to the frame at every boot, so any retained message found on a `cmd/` topic — known
command or not — is replaced with an empty retained payload, which deletes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import datetime, tzinfo

from bridge import schedule
from bridge.metrics import Metrics
from bridge.mqtt import Message, MqttError, MqttLink
from common import topics
from common.config import FrameConfig
from common.configmodel import SCHEDULE_COMMANDS

log = logging.getLogger(__name__)

ACK_TIMEOUT = 30.0


class Commands:
    def __init__(
        self,
        link: MqttLink,
        base: str,
        frames: Iterable[FrameConfig],
        tz: tzinfo,
        metrics: Metrics,
    ) -> None:
        self.link = link
        self.base = base
        self.frames = [f for f in frames if f.schedule]
        self.tz = tz
        self.metrics = metrics
        self._lock = threading.Lock()
        # (frame, command) -> the last value seen sent on that topic since its last step.
        self._sent: dict[tuple[str, str], bytes] = {}

    def run_schedules(self, last: datetime, now: datetime) -> None:
        """Send every scheduled command due in (last, now], local time in `tz`."""
        local = now.astimezone(self.tz)
        for frame in self.frames:
            due = schedule.due(frame.schedule, last.astimezone(self.tz), local)
            if due:
                with self._lock:  # a new step: earlier manual changes no longer hold
                    for command, _ in due:
                        self._sent.pop((frame.id, command), None)
                self._send(frame.id, due, "schedule sent")

    def frame_online(self, frame_id: str, now: datetime) -> None:
        """A frame came online: send its schedule's current state, manual changes excepted."""
        frame = next((f for f in self.frames if f.id == frame_id), None)
        if frame is None:
            return
        current = schedule.current(frame.schedule, now.astimezone(self.tz))
        with self._lock:
            sent = {c: self._sent.get((frame_id, c)) for c, _ in current}
        held = {c for c, p in current if sent[c] not in (None, p.encode())}
        if held:
            log.info("frame %s: manual changes hold until the next step: %s", frame_id,
                     ", ".join(sorted(held)))  # fmt: skip
        self._send(frame_id, [(c, p) for c, p in current if c not in held], "online: schedule sent")

    def _send(self, frame_id: str, commands: list[tuple[str, str]], what: str) -> None:
        if not commands:
            return
        messages = [(topics.cmd(self.base, frame_id, c), p.encode()) for c, p in commands]
        try:
            self.link.publish_all(messages, retain=False, timeout=ACK_TIMEOUT)
        except MqttError as exc:
            self.metrics.inc("mqtt_errors_total")
            log.error("frame %s: scheduled commands not sent: %s", frame_id, exc)
            return
        self.metrics.inc("schedule_commands_total", len(messages), frame=frame_id)
        log.info("frame %s: %s %s", frame_id, what, ", ".join(f"{c}={p}" for c, p in commands))

    def seen(self, msg: Message) -> None:
        """A command on a frame's `cmd/` topic (paho's thread): remember live ones, clear
        retained ones."""
        if msg.retain:
            self.clear_retained(msg)
            return
        parsed = topics.parse_cmd(self.base, msg.topic)
        if parsed is not None and msg.payload and parsed[1] in SCHEDULE_COMMANDS:
            with self._lock:
                self._sent[parsed] = msg.payload

    def clear_retained(self, msg: Message) -> None:
        """Delete a command someone published retained (called on paho's thread)."""
        # Our own clearing comes back empty; live commands arrive with the retain flag unset.
        if not (msg.retain and msg.payload):
            return
        log.warning("clearing a retained command on %s: commands must not be retained", msg.topic)
        try:
            self.link.publish(msg.topic, b"", retain=True)
        except MqttError as exc:
            log.error("could not clear the retained command on %s: %s", msg.topic, exc)
            return
        self.metrics.inc("retained_commands_cleared_total")

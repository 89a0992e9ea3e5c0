"""The bridge's part in the frames' `cmd/` topics: it sends the scheduled commands and clears
commands someone retained by mistake. Does I/O (through `MqttLink`); what is due comes from
`bridge.schedule` (pure).

Scheduled commands are ordinary commands: QoS 1, never retained. A retained command would be
replayed to the frame at every boot, so any retained message found on a `cmd/` topic — known
command or not — is replaced with an empty retained payload, which deletes it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, tzinfo

from bridge import schedule
from bridge.metrics import Metrics
from bridge.mqtt import Message, MqttError, MqttLink
from common import topics
from common.config import FrameConfig

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

    def run_schedules(self, last: datetime, now: datetime) -> None:
        """Send every scheduled command due in (last, now], local time in `tz`."""
        local = now.astimezone(self.tz)
        for frame in self.frames:
            due = schedule.due(frame.schedule, last.astimezone(self.tz), local)
            if not due:
                continue
            messages = [(topics.cmd(self.base, frame.id, c), p.encode()) for c, p in due]
            try:
                self.link.publish_all(messages, retain=False, timeout=ACK_TIMEOUT)
            except MqttError as exc:
                self.metrics.inc("mqtt_errors_total")
                log.error("frame %s: scheduled commands not sent: %s", frame.id, exc)
                continue
            self.metrics.inc("schedule_commands_total", len(messages), frame=frame.id)
            log.info("frame %s: schedule sent %s", frame.id, ", ".join(f"{c}={p}" for c, p in due))

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

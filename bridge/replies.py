"""What the bridge says back on a frame's topics after a like, hide or send: a result event on
`<base>/<frame>/event` and a `notice` command the frame shows as a small icon. Does I/O
(through `MqttLink`), best effort: a reply that cannot be sent is logged, never retried.
"""

from __future__ import annotations

import json
import logging

from bridge.metrics import Metrics
from bridge.mqtt import MqttError, MqttLink
from common import topics

log = logging.getLogger(__name__)

DETAIL_LIMIT = 200


class Replies:
    def __init__(self, link: MqttLink, base: str, metrics: Metrics) -> None:
        self.link = link
        self.base = base
        self.metrics = metrics

    def done(self, frame_id: str, action: str, notice: str | None, **fields: object) -> None:
        """`{"event": "<action>", ...}` and, when given, the notice the frame shows."""
        name = "send" if action == "sent" else action
        self.metrics.inc("frame_requests_total", frame=frame_id, action=name, result="ok")
        self._event(frame_id, {"event": action, **fields})
        if notice is not None:
            self.notice(frame_id, notice)

    def error(self, frame_id: str, code: str, detail: str) -> None:
        """`{"event": "error", "code": ..., "detail": ...}`, and the frame shows `error`.
        `detail` starts with the action (`like`, `hide`, `send`)."""
        log.warning("frame %s: %s: %s", frame_id, code, detail)
        action = detail.split(" ", 1)[0].rstrip(":")
        self.metrics.inc("frame_requests_total", frame=frame_id, action=action, result=code)
        self._event(frame_id, {"event": "error", "code": code, "detail": detail[:DETAIL_LIMIT]})
        self.notice(frame_id, "error")

    def notice(self, frame_id: str, word: str) -> None:
        self._send(topics.cmd(self.base, frame_id, "notice"), word.encode())

    def _event(self, frame_id: str, doc: dict[str, object]) -> None:
        self._send(topics.event(self.base, frame_id), json.dumps(doc).encode())

    def _send(self, topic: str, payload: bytes) -> None:
        try:
            self.link.publish(topic, payload, retain=False)
        except MqttError as exc:
            log.warning("could not publish on %s: %s", topic, exc)

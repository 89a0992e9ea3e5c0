"""Immich's outages as the bridge reports them. Pure apart from logging; time is passed in.

A poll that fails leaves every manifest as it was and the next poll tries again, so an outage
of a minute is a run of failed polls. One line says when the run starts (ERROR, with Immich's
reason) and one when a poll works again (INFO, with how long Immich was away and how many
polls failed); the failures in between are DEBUG, unless the kind of failure changes (say,
from unreachable to a refused key), which is worth a WARNING of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

log = logging.getLogger(__name__)


@dataclass
class Outage:
    """The current run of failed polls, if any."""

    since: datetime | None = None
    kind: str = ""  # the failure's metric label: unreachable, auth, …
    failed: int = 0

    def failed_poll(self, now: datetime, poll: str, kind: str, reason: str) -> bool:
        """Note a failed poll (`poll`: full or delta). True when it starts an outage."""
        self.failed += 1
        if self.since is None:
            self.since, self.kind = now, kind
            log.error("Immich is failing (%s poll); manifests stay as they are: %s", poll, reason)
            return True
        if kind != self.kind:
            self.kind = kind
            log.warning("Immich is still failing, now differently: %s", reason)
        else:
            log.debug("Immich is still failing (%d polls): %s", self.failed, reason)
        return False

    def good_poll(self, now: datetime) -> float | None:
        """Note a poll that worked; the seconds Immich was away when that ends an outage."""
        if self.since is None:
            return None
        seconds = (now - self.since).total_seconds()
        log.info("Immich answers again after %.0f s (%d polls failed)", seconds, self.failed)
        self.since, self.kind, self.failed = None, "", 0
        return seconds

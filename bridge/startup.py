"""What the bridge checks before it starts: that the Immich API key grants every scope the
configured sources need. Does I/O through `ImmichClient`.

A missing scope would make every poll fail with 403 for as long as the bridge runs, so it is a
start-up error naming each missing scope and the config entries that need it. An Immich that
is merely down is not: the bridge starts, keeps the manifests it finds, and polls again later.
"""

from __future__ import annotations

import logging

from common.config import Config
from common.configmodel import IMMICH_SOURCES
from common.immich import ImmichAuthError, ImmichClient, ImmichError

log = logging.getLogger(__name__)

KIND_SCOPES = {
    "album": "album.read",
    "person": "person.read",
    "tag": "tag.read",
    "memories": "memory.read",
}

# What a frame's long press writes to Immich: a favourite, or the tag `frame-skip` (made when
# missing). Only asked for when a frame turns the action on. `user.read` tells the key user's
# photos from a partner's, which are never changed: not every Immich refuses a partner's tag.
ACTION_SCOPES = {
    "like": ("asset.update", "user.read"),
    "hide": ("tag.asset", "tag.create", "user.read"),
}


class StartupError(Exception):
    """The bridge cannot run with this config; the message says why and what to change."""


def needed_scopes(config: Config) -> dict[str, list[str]]:
    """{scope: [config entries that need it]} for the frames that use Immich."""
    needed: dict[str, list[str]] = {}

    def need(scope: str, why: str) -> None:
        needed.setdefault(scope, [])
        if why not in needed[scope]:
            needed[scope].append(why)

    for frame in config.frames:
        where = f"frames.{frame.id}"
        for s in frame.sources:
            if s.kind not in IMMICH_SOURCES:
                continue
            what = s.kind if isinstance(s.value, bool) else f"{s.kind} {s.value!r}"
            need("asset.read", f"{where}.sources: {what}")
            need("asset.view", f"{where}.sources: {what} (the renderer fetches previews)")
            if s.kind in KIND_SCOPES:
                need(KIND_SCOPES[s.kind], f"{where}.sources: {what}")
        for e in frame.exclude:
            need(KIND_SCOPES[e.kind], f"{where}.exclude: {e.kind} {e.value!r}")
        if frame.uses_immich and frame.image.fit == "smart":
            need("face.read", f"{where}.image.fit: smart")
        for scope in ACTION_SCOPES.get(frame.long_press, ()):
            need(scope, f"{where}.long_press: {frame.long_press}")
    if not config.bridge.include_partners and needed:
        need("user.read", "bridge.include_partners: false")
    return needed


def check_immich(client: ImmichClient, config: Config) -> str | None:
    """Check the key; returns the key owner's user id when partners are left out.

    Raises StartupError for a rejected key or missing scopes; logs and returns None when
    Immich cannot be asked right now.
    """
    needed = needed_scopes(config)
    if not needed:
        return None
    try:
        missing = client.missing_scopes(needed)
        if missing:
            lines = [f"{scope} (needed by {'; '.join(needed[scope])})" for scope in missing]
            raise StartupError(
                "the Immich API key lacks scopes the configured sources need: "
                + ", ".join(lines)
                + ". Add them to the key in Immich (Account settings → API keys)."
            )
        if not config.bridge.include_partners:
            me = client.me().get("id")
            return me if isinstance(me, str) else None
    except ImmichAuthError as exc:
        raise StartupError(f"Immich refused the API key ({exc.status}): {exc.reason}") from None
    except ImmichError as exc:
        log.warning("cannot check the Immich API key now (%s); will poll anyway", exc.reason)
    return None

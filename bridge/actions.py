"""Like and hide: a frame's long press, a Home Assistant button or `mosquitto_pub` on
`<base>/<frame>/cmd/like|hide` changes the picture in Immich. Does I/O (Immich, MQTT).

The board never talks to Immich: it only says which picture was held. The bridge checks the
photo is the key user's own (a partner's cannot be changed: an `error` event, no write), writes
to Immich (`PUT /assets` isFavorite; `PUT /tags/{id}/assets` with the tag `frame-skip`, made
when missing), and puts the change into its library at once, so the manifest published at the
end of the same tick already holds it; the next poll reads the same from Immich.
"""

from __future__ import annotations

import dataclasses
import json
import logging

from bridge import pairing
from bridge.asset import Asset
from bridge.replies import Replies
from bridge.showing import Showing
from bridge.sources import UUID_RE, parse_asset
from bridge.sync import FAVORITES, Sync
from common.config import HIDE_TAG, Config
from common.immich import ImmichAuthError, ImmichClient, ImmichError, ImmichNotFound

log = logging.getLogger(__name__)

ACTIONS = ("like", "hide")


def held_picture(event: bytes) -> str | None:
    """The picture of a frame's `{"event": "touch", "action": "hold", ...}`; None otherwise."""
    try:
        doc = json.loads(event.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or (doc.get("event"), doc.get("action")) != ("touch", "hold"):
        return None
    picture = doc.get("picture")
    return picture if isinstance(picture, str) else None


class Actions:
    def __init__(
        self,
        config: Config,
        sync: Sync,
        showing: Showing,
        replies: Replies,
        immich: ImmichClient | None,
    ) -> None:
        self.config = config
        self.sync = sync
        self.showing = showing
        self.replies = replies
        self.immich = immich
        self._me: str | None = None

    def held(self, frame_id: str, picture: str) -> None:
        """A long press on the frame: what its config `long_press` says, if anything."""
        frame = self.config.frame(frame_id)
        if frame is not None and frame.long_press in ACTIONS:
            self.run(frame_id, frame.long_press, picture)

    def run(self, frame_id: str, action: str, payload: str) -> None:
        """`like` or `hide` the picture `payload` names (any other text: the one shown)."""
        picture = payload.strip().lower()
        ids = pairing.assets_of(picture) if picture else []
        if not ids or not all(UUID_RE.match(i) for i in ids):
            picture = self.showing.current(frame_id) or ""
            ids = pairing.assets_of(picture) if picture else []
        if not ids:
            self.replies.error(frame_id, "bad_command", f"{action}: no picture is shown yet")
            return
        if self.immich is None:
            self.replies.error(frame_id, "immich_error", f"{action}: no Immich is configured")
            return
        try:
            found, refusal = self._own_assets(ids)
            if refusal is not None:
                self.replies.error(frame_id, "not_owner", f"{action} {picture}: {refusal}")
                return
            if action == "like":
                self._like(frame_id, picture, found)
            else:
                self._hide(frame_id, picture, ids)
        except ImmichAuthError as exc:
            self.replies.error(frame_id, "immich_error", f"{action}: Immich refused: {exc.reason}")
        except ImmichNotFound as exc:
            self.replies.error(frame_id, "not_owner", f"{action} {picture}: {exc.reason}")
        except ImmichError as exc:
            self.replies.error(frame_id, "immich_error", f"{action} {picture}: {exc.reason}")

    def _owner_id(self) -> str | None:
        if self._me is None and self.immich is not None:
            try:
                me = self.immich.me().get("id")
            except ImmichAuthError:  # no user.read: Immich's own refusal will have to do
                return None
            self._me = me if isinstance(me, str) else None
        return self._me

    def _own_assets(self, ids: list[str]) -> tuple[list[Asset], str | None]:
        """The photos as Immich has them now, or why they cannot be changed (a partner's,
        unknown)."""
        assert self.immich is not None
        me = self._owner_id()
        found = []
        for asset_id in ids:
            try:
                asset = parse_asset(self.immich.asset(asset_id))
            except ImmichNotFound:
                asset = None
            if asset is None:
                return [], f"Immich has no photo {asset_id} the key can see"
            if me is not None and asset.owner != me:
                return [], f"photo {asset_id} belongs to another user (a partner's): not changed"
            found.append(asset)
        return found, None

    def _like(self, frame_id: str, picture: str, found: list[Asset]) -> None:
        assert self.immich is not None
        lib = self.sync.lib
        ids = [a.id for a in found]
        favorite = not all(a.favorite for a in found)  # the key user's own: the flag is true
        self.immich.set_favorite(ids, favorite)
        favorites = set(lib.members.get(FAVORITES, frozenset()))
        favorites = favorites | set(ids) if favorite else favorites - set(ids)
        assets = dict(lib.assets)
        for asset in found:  # a new favourite joins the library as a poll would add it
            assets[asset.id] = asset.replace(favorite=favorite)
        members = {**lib.members, FAVORITES: frozenset(favorites)}
        self._replace(members=members, assets=assets, touched=set(ids))
        log.info("frame %s: %s %s", frame_id, "liked" if favorite else "unliked", picture)
        notice = "liked" if favorite else "unliked"
        self.replies.done(frame_id, "like", notice, picture=picture, favorite=favorite)

    def _hide(self, frame_id: str, picture: str, ids: list[str]) -> None:
        assert self.immich is not None
        lib = self.sync.lib
        tag_id = lib.ids.get(("tag", HIDE_TAG))
        if tag_id is None:
            found = [t for t in self.immich.tags() if t.get("value") == HIDE_TAG]
            tag_id = str(found[0]["id"]) if found else str(self.immich.create_tag(HIDE_TAG)["id"])
        results = self.immich.tag_assets(tag_id, ids)
        refused = [r for r in results if not r.get("success") and r.get("error") != "duplicate"]
        if refused:
            why = ", ".join(f"{r.get('id')}: {r.get('error')}" for r in refused)
            self.replies.error(frame_id, "not_owner", f"hide {picture}: Immich refused ({why})")
            return
        key = ("tag", tag_id)
        members = {**lib.members, key: lib.members.get(key, frozenset()) | frozenset(ids)}
        # A tag new to the library moves a name (the exclusion now resolves): frames rebuild.
        known = lib.ids.get(("tag", HIDE_TAG)) == tag_id
        touched = set(ids) if known else None
        ids_now = {**lib.ids, ("tag", HIDE_TAG): tag_id}
        self._replace(members=members, ids=ids_now, touched=touched)
        log.info("frame %s: hid %s (tag %s)", frame_id, picture, HIDE_TAG)
        self.replies.done(frame_id, "hide", "hidden", picture=picture, tag=HIDE_TAG)

    def _replace(self, **changes: object) -> None:
        """The library with the change made, as a new generation; `touched` (the ids it
        changed, or None) lets frames patch their manifests rather than rebuild them."""
        lib = self.sync.lib
        self.sync.lib = dataclasses.replace(lib, generation=lib.generation + 1, **changes)  # type: ignore[arg-type]

"""Every MQTT topic the frame publishes or subscribes to, built here and nowhere else. Pure.

Protocol §1: `<base>/<frame>/...` with base default "titanoframe" and the frame id (also the
frame's MQTT user name) of 1 to 32 characters from a-z, 0-9, `_` and `-`.
"""

BASE = "titanoframe"
ONLINE = "online"
OFFLINE = "offline"
_FRAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"


def check_frame(frame: str) -> None:
    """Raise ValueError naming FRAME_ID unless `frame` is a valid frame id."""
    if not 1 <= len(frame) <= 32 or frame.strip(_FRAME_CHARS):
        raise ValueError(f"FRAME_ID {repr(frame)[:40]}: use 1 to 32 of a-z 0-9 _ -")


def check_base(base: str) -> None:
    """Raise ValueError unless `base` can prefix topics (no wildcards, no empty level)."""
    levels = base.split("/")
    if not base or len(base) > 64 or "+" in base or "#" in base or "" in levels:
        raise ValueError(f"MQTT base topic {repr(base)[:70]} is not a topic prefix")


class Topics:
    """The topics of one frame. Attributes are full topic strings; wildcards end in `+`."""

    def __init__(self, frame: str, base: str = BASE) -> None:
        check_frame(frame)
        check_base(base)
        prefix = base + "/" + frame + "/"
        self.frame = frame
        self.status = prefix + "status"  # ours, retained, also the last will
        self.state = prefix + "state"  # ours, retained
        self.event = prefix + "event"  # ours, not retained
        self.manifest = prefix + "manifest"  # the bridge's summary
        self.pages = prefix + "manifest/+"  # subscribe: every page
        self.commands = prefix + "cmd/+"  # subscribe: every command
        self.cast = prefix + "cast"  # the renderer's, not retained
        self.bridge_status = base + "/bridge/status"
        self._page = prefix + "manifest/"
        self._cmd = prefix + "cmd/"

    def page(self, shard: str) -> str:
        """The topic of the manifest page of `shard`."""
        return self._page + shard

    def shard_of(self, topic: str) -> str | None:
        """The shard a page topic names, None for any other topic."""
        return self._tail(topic, self._page)

    def command_of(self, topic: str) -> str | None:
        """The command a command topic names, None for any other topic."""
        return self._tail(topic, self._cmd)

    def _tail(self, topic: str, prefix: str) -> str | None:
        if not topic.startswith(prefix):
            return None
        rest = topic[len(prefix) :]
        return rest if rest and "/" not in rest else None

"""Every MQTT topic titanoframe uses, built and parsed in one place. Pure, no I/O.

No other module writes a topic string by hand: they call these functions, so a change to the
topic layout (docs/protocol.md §1) is a change here only.

`base` is config `mqtt.base_topic` (it may contain `/`, e.g. `home/titanoframe`); `prefix` is
config `mqtt.discovery_prefix`. Builders check the frame id and shard so a value taken from a
message can never smuggle a wildcard or an extra level into a topic.
"""

from __future__ import annotations

import re

# A frame id is also the frame's MQTT username and one topic level.
FRAME_ID_PATTERN = r"[a-z0-9_-]{1,32}"
FRAME_ID_RE = re.compile(rf"\A{FRAME_ID_PATTERN}\Z")
# Shard names: "all" (width 0) or the last 1 or 2 hex digits of a picture id.
SHARD_RE = re.compile(r"\A(all|[0-9a-f]{1,2})\Z")

# The commands a frame understands, in the order of the protocol's command table.
COMMANDS = (
    "next",
    "previous",
    "pause",
    "display",
    "brightness",
    "auto_brightness",
    "interval",
    "show",
    "sync",
    # The bridge acts on these (Immich writes); the frame only shows what the bridge says back.
    "like",
    "hide",
    "notice",
)

BRIDGE = "bridge"
# The commands the bridge itself understands (`<base>/bridge/cmd/<command>`).
BRIDGE_COMMANDS = ("confirm_removal",)
# Home Assistant device-discovery object ids are `titanoframe_<frame>`.
DEVICE_PREFIX = "titanoframe_"
BRIDGE_DEVICE = "titanoframe-bridge"


def _frame(frame: str) -> str:
    if not FRAME_ID_RE.match(frame):
        raise ValueError(f"frame id must match {FRAME_ID_RE.pattern}, got {frame!r}")
    return frame


def bridge_status(base: str) -> str:
    """`<base>/bridge/status`: `online` / `offline`, retained, also the bridge's last will."""
    return f"{base}/{BRIDGE}/status"


def bridge_state(base: str) -> str:
    """`<base>/bridge/state`: the bridge's health and problems (its `/healthz`), JSON, retained."""
    return f"{base}/{BRIDGE}/state"


def bridge_cmd(base: str, bridge_command: str) -> str:
    """`<base>/bridge/cmd/<command>`: a plain-text command to the bridge, never retained."""
    if bridge_command not in BRIDGE_COMMANDS:
        raise ValueError(
            f"command must be one of {', '.join(BRIDGE_COMMANDS)}, got {bridge_command!r}"
        )
    return f"{base}/{BRIDGE}/cmd/{bridge_command}"


def manifest(base: str, frame: str) -> str:
    """`<base>/<frame>/manifest`: the manifest summary (JSON), retained."""
    return f"{base}/{_frame(frame)}/manifest"


def manifest_page(base: str, frame: str, shard: str) -> str:
    """`<base>/<frame>/manifest/<shard>`: one manifest page (text), retained."""
    if not SHARD_RE.match(shard):
        raise ValueError(f"shard must match {SHARD_RE.pattern}, got {shard!r}")
    return f"{manifest(base, frame)}/{shard}"


def picture(base: str, frame: str) -> str:
    """`<base>/<frame>/picture`: JSON about the picture shown now, retained (bridge)."""
    return f"{base}/{_frame(frame)}/picture"


def status(base: str, frame: str) -> str:
    """`<base>/<frame>/status`: `online` / `offline`, retained, the frame's last will."""
    return f"{base}/{_frame(frame)}/status"


def state(base: str, frame: str) -> str:
    """`<base>/<frame>/state`: the frame's state JSON, retained."""
    return f"{base}/{_frame(frame)}/state"


def guests(base: str, frame: str) -> str:
    """`<base>/<frame>/guests`: the photos sent to a frame and until when, JSON, retained
    (bridge): what lets them outlive a bridge restart."""
    return f"{base}/{_frame(frame)}/guests"


def event(base: str, frame: str) -> str:
    """`<base>/<frame>/event`: the frame's event JSON, never retained."""
    return f"{base}/{_frame(frame)}/event"


def cast(base: str, frame: str) -> str:
    """`<base>/<frame>/cast`: an image cast to the frame (JSON, renderer), never retained."""
    return f"{base}/{_frame(frame)}/cast"


def cmd(base: str, frame: str, command: str) -> str:
    """`<base>/<frame>/cmd/<command>`: a plain-text command, never retained."""
    if command not in COMMANDS:
        raise ValueError(f"command must be one of {', '.join(COMMANDS)}, got {command!r}")
    return f"{base}/{_frame(frame)}/cmd/{command}"


def frames_filter(base: str, leaf: str) -> str:
    """Subscription filter for one leaf of every frame, e.g. `<base>/+/state`.

    `leaf` may have several levels (`manifest/+`, `cmd/+`).
    """
    return f"{base}/+/{leaf}"


def parse(base: str, topic: str) -> tuple[str, str] | None:
    """`<base>/<frame>/<rest>` → (frame, rest); None when the topic is not a frame's topic.

    `<base>/bridge/...` is not a frame (the name is reserved), so it gives None too.
    """
    head = base + "/"
    if not topic.startswith(head):
        return None
    frame, sep, rest = topic[len(head) :].partition("/")
    if not sep or not rest or frame == BRIDGE or not FRAME_ID_RE.match(frame):
        return None
    return frame, rest


def parse_cmd(base: str, topic: str) -> tuple[str, str] | None:
    """`<base>/<frame>/cmd/<command>` → (frame, command); None for any other topic.

    The command is returned even when it is not in COMMANDS: the bridge clears a retained
    message on any `cmd/` topic, known or not. Check `command in COMMANDS` to act on it.
    """
    parsed = parse(base, topic)
    if parsed is None:
        return None
    frame, rest = parsed
    kind, sep, command = rest.partition("/")
    if kind != "cmd" or not sep or not command or "/" in command:
        return None
    return frame, command


def parse_manifest(base: str, topic: str) -> tuple[str, str | None] | None:
    """`<base>/<frame>/manifest` → (frame, None); `.../manifest/<shard>` → (frame, shard)."""
    parsed = parse(base, topic)
    if parsed is None:
        return None
    frame, rest = parsed
    if rest == "manifest":
        return frame, None
    kind, sep, shard = rest.partition("/")
    if kind != "manifest" or not sep or not SHARD_RE.match(shard):
        return None
    return frame, shard


def ha_status(prefix: str) -> str:
    """`<prefix>/status`: Home Assistant's birth message (`online` → re-send discovery)."""
    return f"{prefix}/status"


def discovery(prefix: str, frame: str) -> str:
    """`<prefix>/device/titanoframe_<frame>/config`: a frame's device-discovery payload."""
    return f"{prefix}/device/{DEVICE_PREFIX}{_frame(frame)}/config"


def bridge_discovery(prefix: str, base: str) -> str:
    """`<prefix>/device/titanoframe-bridge[-<base>]/config`: the bridge's own device payload.

    The `-` keeps it apart from frames' `titanoframe_<frame>` ids; a base topic other than the
    default is part of the id, so two installations on one broker get a device each.
    """
    suffix = "" if base == "titanoframe" else "-" + re.sub(r"[^a-zA-Z0-9_-]", "_", base)
    return f"{prefix}/device/{BRIDGE_DEVICE}{suffix}/config"


def discovery_filter(prefix: str) -> str:
    """Subscription filter matching every device-discovery topic, ours and others'."""
    return f"{prefix}/device/+/config"


def parse_discovery(prefix: str, topic: str) -> str | None:
    """`<prefix>/device/titanoframe_<frame>/config` → frame; None for any other topic."""
    head, tail = f"{prefix}/device/{DEVICE_PREFIX}", "/config"
    if not (topic.startswith(head) and topic.endswith(tail)):
        return None
    frame = topic[len(head) : len(topic) - len(tail)]
    return frame if FRAME_ID_RE.match(frame) else None

"""The configuration's shape: frozen dataclasses with their defaults. Pure, no I/O.

`common.config` re-exports everything here; code elsewhere imports from `common.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Keys whose values are secrets: never shown in errors, dumps or logs.
SECRET_KEYS = frozenset(
    {
        "api_key",
        "password",
        "homeassistant_password",
        "url_key",
        "mqtt_password",
        "secret",
        "cast_token",
    }
)

FORMATS = ("bmp8", "bmp16")
FITS = ("contain", "cover", "blur", "smart")
IMMICH_SOURCES = ("favorites", "album", "person", "tag", "memories")
SOURCE_KINDS = (*IMMICH_SOURCES, "folder")
# A source's `stacks:` choices: the primary photo of each Immich stack, or every member.
STACKS = ("primary", "all")
EXCLUDE_KINDS = ("tag", "person", "album")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SCHEDULE_COMMANDS = ("display", "brightness", "auto_brightness", "pause", "interval")
# What a long press on a frame's screen does to the picture shown (the bridge does it in Immich).
LONG_PRESS = ("off", "like", "hide")
# The Immich tag `hide` puts on a photo; a frame whose exclude lists it drops the photo.
HIDE_TAG = "frame-skip"


def split_listen(listen: str) -> tuple[str, int]:
    """`"host:port"` or `"[v6 address]:port"` → (host, port). Raises ValueError when malformed."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdecimal():
        raise ValueError(f"expected host:port, got {listen!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host or not 1 <= int(port) <= 65535:
        raise ValueError(f"expected host:port, got {listen!r}")
    return host, int(port)


@dataclass(frozen=True)
class ImmichConfig:
    url: str
    api_key: str
    timeout: float = 10.0


@dataclass(frozen=True)
class MqttConfig:
    host: str = "localhost"
    port: int = 1883
    username: str | None = "bridge"  # None: an anonymous client, if the broker allows one
    password: str | None = None
    base_topic: str = "titanoframe"
    discovery_prefix: str = "homeassistant"
    tls: bool = False
    ca_file: str | None = None
    # Only `python -m bridge broker-users` reads this: the password Home Assistant logs in with.
    homeassistant_password: str | None = None


@dataclass(frozen=True)
class RendererConfig:
    listen: str = "0.0.0.0:8080"
    public_url: str = "http://localhost:8080"
    cache_dir: Path = Path("./cache")
    cache_max_mb: int = 2048
    url_key: str | None = None
    mqtt_password: str | None = None
    workers: int = 2
    upstream_timeout: float = 15.0
    max_upstream_mb: int = 40
    # A connection sends a complete request head within this many seconds of opening or of its
    # previous answer, or it is closed; at most max_connections are open at once.
    head_timeout: float = 5.0
    max_connections: int = 256
    # Casting (docs/protocol.md §6.2): the token that authorises uploads to every frame without
    # a token of its own (None: only those frames take casts), the largest upload, and how many
    # casts a frame takes a minute.
    cast_token: str | None = None
    cast_max_mb: int = 10
    cast_per_minute: int = 6

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


@dataclass(frozen=True)
class BridgeConfig:
    poll_interval: float = 30
    full_scan_interval: float = 3600
    max_removal: float = 0.5
    removal_hold: float = 86400.0  # seconds a mass removal is held at least (bridge.brake)
    metrics_listen: str | None = "127.0.0.1:9110"
    timezone: str = "UTC"
    include_archived: bool = False
    include_partners: bool = True
    # How long a photo sent to a frame (`show` of a photo outside its manifest) stays, in days.
    guest_days: float = 7


@dataclass(frozen=True)
class ImageProfile:
    format: str = "bmp16"
    fit: str = "contain"
    pair_portraits: bool = False
    caption: str | None = None


@dataclass(frozen=True)
class Source:
    kind: str
    # True for favorites/memories; a name or UUID for album/person/tag; an absolute path for folder.
    value: str | bool
    # Of an Immich stack (a burst, RAW + JPEG): only the primary photo, as Immich's timeline
    # shows it, or every member.
    stacks: str = "primary"


@dataclass(frozen=True)
class Exclude:
    kind: str
    value: str


@dataclass(frozen=True)
class ScheduleEntry:
    at: tuple[int, int]
    days: tuple[str, ...] = ()
    # Ordered (command, payload); payloads exactly as the frame's cmd topics take them.
    commands: tuple[tuple[str, str], ...] = ()

    @property
    def at_text(self) -> str:
        return f"{self.at[0]:02d}:{self.at[1]:02d}"


@dataclass(frozen=True)
class FrameConfig:
    id: str
    secret: str | None = None
    sources: tuple[Source, ...] = ()
    exclude: tuple[Exclude, ...] = ()
    image: ImageProfile = field(default_factory=ImageProfile)
    schedule: tuple[ScheduleEntry, ...] = ()
    long_press: str = "off"
    cast_token: str | None = None  # overrides renderer.cast_token for this frame

    @property
    def uses_immich(self) -> bool:
        return any(s.kind in IMMICH_SOURCES for s in self.sources)


@dataclass(frozen=True)
class Config:
    immich: ImmichConfig | None = None
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    renderer: RendererConfig = field(default_factory=RendererConfig)
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    frames: tuple[FrameConfig, ...] = ()

    def frame(self, frame_id: str) -> FrameConfig | None:
        return next((f for f in self.frames if f.id == frame_id), None)

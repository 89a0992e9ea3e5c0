"""The rules of casting an image to a frame (docs/protocol.md §6.2). Pure: values in, values
out, `now` passed in.

Who may cast (a token per frame, or the renderer's for every frame), for how long, which bytes
are an image worth decoding, how often a frame takes a cast, and the announcement the frame
receives over MQTT: a signed URL of the rendered BMP and the seconds to show it.
"""

from __future__ import annotations

import json
import math
from collections import deque
from urllib.parse import urlencode

from common import signing
from common.config import Config, FrameConfig

CAST_ROUTE = "/v1/frames/{frame}/cast"
CAST_FILE_ROUTE = "/v1/frames/{frame}/casts/{name}"
# Largest image decoded, in pixels: a 24-megapixel camera photo fits, a decompression bomb
# (a small PNG of 20000×20000 pixels) does not.
MAX_PIXELS = 25_000_000
DEFAULT_SECONDS = 30
MIN_SECONDS, MAX_SECONDS = 5, 600
# A cast's URL is good this long: the frame fetches it at once, the rest is for a slow Wi-Fi.
URL_TTL = 300
# Casts of one frame kept on disk; older ones are deleted as new ones come.
KEEP = 3
WINDOW = 60.0  # seconds of the rate limit's window
# The frame reads messages of at most this many bytes.
MAX_ANNOUNCEMENT = 8192

_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"))
_DECLARED = {"image/jpeg": "JPEG", "image/jpg": "JPEG", "image/png": "PNG"}
# What `curl --data-binary` and scripts send when nobody says: the bytes then decide.
_UNTYPED = {"", "application/octet-stream", "application/x-www-form-urlencoded"}


class CastRefused(Exception):
    """A cast that is answered with an error: `status`, `code` and `reason` become the JSON."""

    def __init__(self, status: int, code: str, reason: str, **headers: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.headers = headers


def token_for(config: Config, frame: FrameConfig) -> str | None:
    """The token that authorises casts to `frame`: its own, else the renderer's; None: off."""
    return frame.cast_token or config.renderer.cast_token


def check_token(expected: str | None, presented: str | None) -> None:
    """Raise CastRefused unless `presented` is the frame's cast token."""
    if expected is None:
        raise CastRefused(
            403,
            "cast_disabled",
            "casting is off for this frame: set renderer.cast_token or the frame's cast_token",
        )
    if not signing.secret_matches(expected, presented):
        why = "missing cast token" if presented is None else "bad cast token"
        raise CastRefused(401, "unauthorized", why, **{"WWW-Authenticate": "Bearer"})


def seconds(raw: str | None) -> int:
    """The `seconds` query parameter: DEFAULT_SECONDS when absent; CastRefused when invalid."""
    if raw is None:
        return DEFAULT_SECONDS
    if raw.isascii() and raw.isdigit() and len(raw) <= 6:
        value = int(raw)
        if MIN_SECONDS <= value <= MAX_SECONDS:
            return value
    reason = f"seconds must be a whole number from {MIN_SECONDS} to {MAX_SECONDS}"
    raise CastRefused(400, "bad_seconds", reason)


def too_big(size: int, limit: int) -> CastRefused:
    return CastRefused(413, "too_large", f"the image is over {limit >> 20} MB ({size} bytes)")


def image_format(data: bytes, content_type: str | None) -> str:
    """ "JPEG" or "PNG", from the bytes' signature and the declared type, which must agree."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    declared = _DECLARED.get(mime)
    if declared is None and mime not in _UNTYPED:
        raise CastRefused(415, "unsupported_type", f"expected image/jpeg or image/png, got {mime}")
    if not data:
        raise CastRefused(400, "empty_body", "no image in the request body")
    found = next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)
    if found is None:
        raise CastRefused(415, "unsupported_type", "the body is not a JPEG or PNG image")
    if declared is not None and declared != found:
        raise CastRefused(415, "unsupported_type", f"declared {mime}, but the body is {found}")
    return found


class RateLimit:
    """At most `per_minute` casts to each frame in any WINDOW seconds."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._times: dict[str, deque[float]] = {}

    def take(self, frame: str, now: float) -> None:
        """Count one cast to `frame` at `now`; CastRefused 429 when the frame has had its fill."""
        times = self._times.setdefault(frame, deque())
        while times and times[0] <= now - WINDOW:
            times.popleft()
        if len(times) >= self.per_minute:
            wait = max(1, math.ceil(times[0] + WINDOW - now))
            reason = f"at most {self.per_minute} casts a minute to a frame; try again in {wait} s"
            raise CastRefused(429, "rate_limited", reason, **{"Retry-After": str(wait)})
        times.append(now)


def signed_name(cast_id: str) -> str:
    """What the URL signature covers in place of a picture id: never a picture's id."""
    return f"cast/{cast_id}"


def cast_url(public_url: str, key: str | None, frame: str, cast_id: str, exp: int) -> str:
    """The URL of a cast's BMP; signed until `exp` when the renderer has a `url_key`."""
    url = f"{public_url.rstrip('/')}/v1/frames/{frame}/casts/{cast_id}.bmp"
    if key is None:
        return url
    sig = signing.sign(key, frame, signed_name(cast_id), exp)
    return f"{url}?{urlencode({'exp': str(exp), 'sig': sig})}"


def announcement(url: str, seconds: int, cast_id: str, size: int, fmt: str) -> bytes:
    """The MQTT payload the frame acts on (protocol §2.4); ValueError when over 8 KB."""
    doc = {"v": 1, "id": cast_id, "url": url, "seconds": seconds, "bytes": size, "format": fmt}
    payload = json.dumps(doc, separators=(",", ":")).encode()
    if len(payload) > MAX_ANNOUNCEMENT:
        raise ValueError(f"cast announcement is {len(payload)} bytes (renderer.public_url?)")
    return payload

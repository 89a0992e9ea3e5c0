"""Casting an image to a frame: the upload route, the cast area, the announcement. Does I/O.

`POST /v1/frames/<frame>/cast` takes a JPEG or PNG body with the frame's cast token (Bearer)
and `?seconds=`; the checks run cheapest first (frame, token, rate, seconds, size, type), and
only then is a worker asked to render it to the frame's profile (pixels checked there, from the
header, before decoding). The BMP goes to the cast area, `<cache_dir>/cast/<frame>/<id>.bmp`,
apart from the picture cache (whose index never sees it); the announcement, a signed URL and
the seconds, goes to `<base>/<frame>/cast`, not retained. `GET /v1/frames/<frame>/casts/<id>.bmp`
serves it to the frame (its secret, or the URL's signature) for URL_TTL seconds. The area is
emptied at start; each frame keeps its last KEEP casts.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from common import signing, topics
from renderer import castrules, ids
from renderer.app import SERVICE, problem
from renderer.castrules import CAST_FILE_ROUTE, CAST_ROUTE, CastRefused
from renderer.castwork import CastTask
from renderer.errors import PictureError

if TYPE_CHECKING:
    from common.config import FrameConfig
    from renderer.service import Service

log = logging.getLogger(__name__)

READ_TIMEOUT = 30.0  # seconds for the whole body to arrive
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Held:
    """A cast on disk: its frame, file and when its URL stops working."""

    frame: str
    path: Path
    expires: float


class CastArea:
    """The casts on disk, indexed in memory: only what this process wrote is ever served."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._held: dict[str, Held] = {}

    def reset(self) -> None:
        """Start empty: casts of an earlier run are gone with their URLs."""
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)

    def new_path(self, frame: str) -> tuple[str, Path]:
        cast_id = secrets.token_hex(16)
        return cast_id, self.root / frame / f"{cast_id}.bmp"

    def add(self, cast_id: str, held: Held, now: float) -> None:
        """Index a new cast; drop expired ones and all but the frame's newest KEEP."""
        self._held[cast_id] = held
        mine = [c for c, h in self._held.items() if h.frame == held.frame]
        old = {c for c, h in self._held.items() if h.expires < now}
        old.update(mine[: max(0, len(mine) - castrules.KEEP)])
        for c in old:
            self._held.pop(c).path.unlink(missing_ok=True)

    def find(self, frame: str, cast_id: str, now: float) -> Path | None:
        held = self._held.get(cast_id)
        if held is not None and held.expires < now:  # its URL is over: so is the file
            del self._held[cast_id]
            held.path.unlink(missing_ok=True)
            return None
        if held is None or held.frame != frame:
            return None
        return held.path


def _frame(service: Service, request: web.Request) -> FrameConfig:
    frame_id = request.match_info["frame"]
    frame = service.config.frame(frame_id) if ids.is_frame_id(frame_id) else None
    if frame is None:
        raise CastRefused(404, "unknown_frame", "no such frame in the renderer's config")
    return frame


async def cast(request: web.Request) -> web.Response:
    """The upload route; every refusal is a JSON problem, nothing is published then."""
    service = request.app[SERVICE]
    try:
        body = await _cast(service, request)
    except CastRefused as exc:
        service.metrics.inc("casts_refused_total", code=exc.code)
        return problem(exc.status, exc.code, exc.reason, **exc.headers)
    service.metrics.inc("casts_total", frame=str(body["frame"]))
    return web.json_response(body)


async def _cast(service: Service, request: web.Request) -> dict[str, object]:
    frame = _frame(service, request)
    presented = signing.bearer_token(request.headers.get("Authorization"))
    castrules.check_token(castrules.token_for(service.config, frame), presented)
    service.cast_limit.take(frame.id, time.monotonic())
    seconds = castrules.seconds(request.query.get("seconds"))
    data = await _read_body(request, service.config.renderer.cast_max_mb << 20)
    fmt = castrules.image_format(data, request.headers.get("Content-Type"))
    if not service.membership.connected:
        raise CastRefused(503, "broker_unavailable", "the renderer is not connected to MQTT")
    profile = service.profile(frame)
    cast_id, path = service.casts.new_path(frame.id)
    try:
        size = await service.pipeline.pool.produce(CastTask(data, fmt, profile, str(path)))
    except PictureError as exc:
        raise CastRefused(exc.status, exc.code, exc.reason, **exc.headers) from None
    rc = service.config.renderer
    exp = int(time.time()) + castrules.URL_TTL
    service.casts.add(cast_id, Held(frame.id, path, exp), time.time())
    url = castrules.cast_url(rc.public_url, rc.url_key, frame.id, cast_id, exp)
    payload = castrules.announcement(url, seconds, cast_id, size, profile.format)
    if not service.membership.publish(
        topics.cast(service.config.mqtt.base_topic, frame.id), payload
    ):
        raise CastRefused(503, "broker_unavailable", "the announcement could not be published")
    log.info("cast %s to frame %s for %d s (%d bytes)", cast_id, frame.id, seconds, size)
    return {"frame": frame.id, "id": cast_id, "seconds": seconds, "bytes": size}


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The request body, at most `limit` bytes (413 beyond, said before reading when declared)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise castrules.too_big(declared, limit)
    buf = bytearray()

    async def read() -> None:
        async for chunk in request.content.iter_chunked(_CHUNK):
            buf.extend(chunk)
            if len(buf) > limit:
                raise castrules.too_big(len(buf), limit)

    try:
        await asyncio.wait_for(read(), READ_TIMEOUT)
    except TimeoutError:
        raise CastRefused(408, "body_timeout", f"the body took over {READ_TIMEOUT:g} s") from None
    return bytes(buf)


async def cast_file(request: web.Request) -> web.StreamResponse:
    """A cast's BMP, for the frame: its secret or the URL's signature, until the URL expires."""
    service = request.app[SERVICE]
    try:
        frame = _frame(service, request)
    except CastRefused as exc:
        return problem(exc.status, exc.code, exc.reason)
    name = request.match_info["name"]
    cast_id = name.removesuffix(".bmp")
    denied = _authorise(service, request, frame, cast_id)
    if denied is not None:
        return problem(401, "unauthorized", denied, **{"WWW-Authenticate": "Bearer"})
    path = service.casts.find(frame.id, cast_id, time.time()) if name.endswith(".bmp") else None
    if path is None:
        return problem(404, "no_such_cast", "no such cast, or it has expired")
    headers = {"Content-Type": "image/bmp", "Cache-Control": "no-store"}
    return web.FileResponse(path, headers=headers)


def _authorise(
    service: Service, request: web.Request, frame: FrameConfig, cast_id: str
) -> str | None:
    """None when the request may fetch the cast (as `app.authorise` does for pictures)."""
    if frame.secret is None:
        return None
    presented = signing.bearer_token(request.headers.get("Authorization"))
    if signing.secret_matches(frame.secret, presented):
        return None
    key, query = service.config.renderer.url_key, request.query
    if key and "sig" in query and "exp" in query:
        name = castrules.signed_name(cast_id)
        return signing.verify_signature(
            key, frame.id, name, query["exp"], query["sig"], time.time()
        )
    return "missing frame secret" if presented is None else "bad frame secret"


def add_routes(app: web.Application) -> None:
    """The cast routes on the renderer's app (`renderer.app.build_app` made it)."""
    app.router.add_post(CAST_ROUTE, cast)
    app.router.add_get(CAST_FILE_ROUTE, cast_file)

"""The renderer's HTTP routes (docs/protocol.md §6): pictures, health and metrics. Does I/O.

Every answer a client can cause is a deliberate status with a JSON reason; a middleware turns
anything unexpected into a 500 (logged) so a bug never drops a connection, and counts every
response. Cache hits go from disk to socket with `sendfile` and never touch Pillow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from aiohttp import web
from aiohttp.helpers import must_be_empty_body

from common import signing
from renderer import ids
from renderer.castrules import CAST_FILE_ROUTE, CAST_ROUTE
from renderer.errors import PictureError
from renderer.pipeline import Job

if TYPE_CHECKING:
    from renderer.service import Service

log = logging.getLogger(__name__)

PICTURE_ROUTE = "/v1/frames/{frame}/pictures/{name}"
# A picture's bytes never change under one version: clients may keep it, privately.
CACHE_CONTROL = "private, max-age=86400"
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"

SERVICE: web.AppKey[Service] = web.AppKey("service")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problem(status: int, code: str, reason: str, **headers: str) -> web.Response:
    """A JSON error answer, docs/protocol.md §6: `{"error": <code>, "detail": <words>}`."""
    return web.json_response({"error": code, "detail": reason}, status=status, headers=headers)


class CachedFile(web.StreamResponse):
    """A cached picture sent with `loop.sendfile` (zero-copy on a plain TCP socket)."""

    def __init__(self, fobj: BinaryIO, size: int, headers: dict[str, str]) -> None:
        super().__init__(status=200, headers=headers)
        self._fobj = fobj
        self.content_length = size

    async def prepare(self, request: web.BaseRequest) -> Any:
        try:
            writer = await super().prepare(request)
            size = self.content_length or 0
            if size == 0 or must_be_empty_body(request.method, self.status):
                return writer
            transport = request.transport
            if transport is None:
                raise ConnectionResetError("client went away")
            await asyncio.get_running_loop().sendfile(transport, self._fobj, 0, size)
            await super().write_eof()
            return writer
        finally:
            self._fobj.close()


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak or strong) or is `*`. Never raises."""
    if not header:
        return False
    for part in header.split(","):
        tag = part.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def _presented_secret(request: web.Request) -> str | None:
    token = signing.bearer_token(request.headers.get("Authorization"))
    return token if token is not None else request.query.get("token")


def authorise(
    service: Service,
    request: web.Request,
    frame: str,
    secret: str | None,
    picture_id: str | None,
    ext: str | None,
) -> str | None:
    """None when the request may fetch the picture, else why not (for the 401 body)."""
    if secret is None:
        return None
    presented = _presented_secret(request)
    if signing.secret_matches(secret, presented):
        return None
    query = request.query
    key = service.config.renderer.url_key
    if ext == "jpg" and key and picture_id and "sig" in query and "exp" in query:
        why = signing.verify_signature(
            key, frame, picture_id, query["exp"], query["sig"], time.time()
        )
        return why
    return "missing frame secret" if presented is None else "bad frame secret"


async def picture(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    frame_id, name = request.match_info["frame"], request.match_info["name"]
    frame = service.config.frame(frame_id) if ids.is_frame_id(frame_id) else None
    if frame is None:
        return problem(404, "unknown_frame", "no such frame in the renderer's config")
    parsed = ids.parse_file_name(name)
    pid, ext = parsed if parsed else (None, None)
    denied = authorise(service, request, frame.id, frame.secret, pid, ext)
    if denied is not None:
        return problem(401, "unauthorized", denied, **{"WWW-Authenticate": "Bearer"})
    if pid is None or ext is None:
        reason = "expected <picture id>.bmp or <picture id>.jpg, id = uuid or uuid+uuid"
        return problem(400, "bad_picture_id", reason)
    job = service.job(frame, pid, ext)
    if job is None:
        return problem(404, "not_in_manifest", "picture is not in this frame's current manifest")
    headers = {
        "ETag": f'"{job.version}"',
        "Cache-Control": CACHE_CONTROL,
        "Content-Type": ids.CONTENT_TYPES[ext],
    }
    if etag_matches(request.headers.get("If-None-Match"), headers["ETag"]):
        return web.Response(status=304, headers={k: headers[k] for k in ("ETag", "Cache-Control")})
    return await _send(service, job, headers)


async def _send(service: Service, job: Job, headers: dict[str, str]) -> web.StreamResponse:
    cache = service.pipeline.cache
    hit = _open(cache.lookup(job.key))
    if hit is not None:
        service.metrics.inc("cache_hits_total")
        service.metrics.inc("cache_served_bytes_total", hit[1])
        return CachedFile(*hit, headers)
    service.metrics.inc("cache_misses_total")
    try:
        rendered = await service.pipeline.produce(job)
    except PictureError as exc:
        return problem(exc.status, exc.code, exc.reason, **exc.headers)
    fresh = _open(rendered.path)
    if fresh is None:  # evicted before it could be sent: only a cache far too small does that
        reason = "the picture was evicted as soon as it was rendered; raise renderer.cache_max_mb"
        return problem(503, "cache_too_small", reason, **{"Retry-After": "5"})
    return CachedFile(*fresh, headers)


def _open(path: Path | None) -> tuple[BinaryIO, int] | None:
    # Opened on the loop: the cache's inodes are hot and an executor hop costs more than the
    # open itself. A file evicted or deleted behind the index's back is simply a miss.
    if path is None:
        return None
    try:
        fobj = open(path, "rb")  # noqa: SIM115 — closed by CachedFile after sending
    except OSError:
        return None
    return fobj, os.fstat(fobj.fileno()).st_size


async def healthz(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    return web.json_response(await service.health())


async def metrics(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    service.refresh_gauges()
    body = service.metrics.exposition().encode()
    return web.Response(body=body, headers={"Content-Type": METRICS_TYPE})


def _route_name(request: web.Request) -> str:
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else ""
    names = {PICTURE_ROUTE: "picture", CAST_ROUTE: "cast", CAST_FILE_ROUTE: "cast_file"}
    return {**names, "/healthz": "healthz", "/metrics": "metrics"}.get(path, "other")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON for aiohttp's own errors, 500 for the unexpected (logged), one metric each.

    The access log line is `renderer.accesslog`'s, written by aiohttp once the answer is sent.
    """
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        extra = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else {}
        resp = problem(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason, **extra)
    except Exception:
        log.exception("unexpected error answering %s %r", request.method, request.path)
        resp = problem(500, "internal", "unexpected error; the renderer's log has the details")
    service = request.app[SERVICE]
    service.metrics.inc("requests_total", route=_route_name(request), status=str(resp.status))
    return resp


def build_app(service: Service) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=64 << 10)
    app[SERVICE] = service
    app.router.add_get(PICTURE_ROUTE, picture)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app

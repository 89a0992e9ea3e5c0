"""From picture request to cached file: dispatch to worker processes, index the result. Does I/O.

Concurrent requests for the same picture share one job (single flight), and a job keeps going
when the client that asked for it hangs up, so its result still lands in the cache. Each job
runs whole in a worker process (`renderer.pool`, `renderer.work`: fetch the source, render,
write the cache file); the event loop only dispatches jobs, indexes finished files and moves
bytes, so the
serving process costs little CPU per picture and renders scale with the workers. `Prerenderer`
feeds pictures new to a manifest through the same path with bounded concurrency, so frames
find them cached.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from common.config import ImageProfile
from renderer.cache import CacheKey, DiskCache, profile_key
from renderer.errors import RENDER_CODES, PictureError
from renderer.metrics import Metrics
from renderer.pool import RenderPool
from renderer.work import Task

__all__ = ["Job", "PictureError", "Pipeline", "Prerenderer", "RenderPool", "Rendered"]

log = logging.getLogger(__name__)

# Retries of a pre-render that failed for a reason that may pass (Immich down or 5xx).
PRERENDER_ATTEMPTS = 3
PRERENDER_BACKOFF = 5.0


@dataclass(frozen=True)
class Job:
    """One picture of one frame in one format, at the version its manifest names."""

    frame: str
    picture_id: str
    assets: tuple[str, ...]
    version: str
    ext: str
    profile: ImageProfile
    folders: tuple[str, ...] = ()

    @property
    def key(self) -> CacheKey:
        return CacheKey(profile_key(self.profile), self.picture_id, self.version, self.ext)


@dataclass(frozen=True)
class Rendered:
    path: Path
    size: int


class Pipeline:
    """Cache lookups and single-flight production of missing pictures."""

    def __init__(self, cache: DiskCache, pool: RenderPool, metrics: Metrics) -> None:
        self.cache = cache
        self.pool = pool
        self.metrics = metrics
        self._inflight: dict[CacheKey, asyncio.Future[Rendered]] = {}

    async def produce(self, job: Job) -> Rendered:
        """Render `job` (or join the render already under way) and store it in the cache."""
        key = job.key
        fut = self._inflight.get(key)
        if fut is None:
            fut = asyncio.ensure_future(self._make(job))
            self._inflight[key] = fut
            fut.add_done_callback(lambda f: self._done(key, f))
        return await asyncio.shield(fut)

    def _done(self, key: CacheKey, fut: asyncio.Future[Rendered]) -> None:
        self._inflight.pop(key, None)
        if not fut.cancelled():
            fut.exception()  # retrieved here, so an unawaited failure is not logged as lost

    async def _make(self, job: Job) -> Rendered:
        started = time.monotonic()
        path = self.cache.path(job.key)
        task = Task(job.assets, job.folders, job.profile, job.ext, str(path))
        try:
            size = await self.pool.produce(task)
        except PictureError as exc:
            if exc.code in RENDER_CODES:
                self.metrics.inc("render_errors_total")
            else:
                self.metrics.inc("upstream_errors_total", kind=exc.metric_kind)
            raise
        self.cache.adopt(job.key, size)
        self.metrics.observe("render_seconds", time.monotonic() - started)
        return Rendered(path, size)

    async def close(self) -> None:
        await self.pool.close()


class Prerenderer:
    """Background renders of pictures new to a manifest, `concurrency` at a time."""

    def __init__(self, pipeline: Pipeline, metrics: Metrics, concurrency: int) -> None:
        self.pipeline = pipeline
        self.metrics = metrics
        self.concurrency = max(1, concurrency)
        self._queue: asyncio.Queue[tuple[Job, int]] = asyncio.Queue()
        self._pending: set[CacheKey] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()) for _ in range(self.concurrency)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def submit(self, jobs: Iterable[Job], attempt: int = 1) -> None:
        """Queue jobs not already queued or cached (call on the event loop)."""
        for job in jobs:
            key = job.key
            if key in self._pending or self.pipeline.cache.contains(key):
                continue
            self._pending.add(key)
            self._queue.put_nowait((job, attempt))
        self.metrics.set("prerender_queue", self._queue.qsize())

    async def _run(self) -> None:
        while True:
            job, attempt = await self._queue.get()
            self.metrics.set("prerender_queue", self._queue.qsize())
            try:
                if not self.pipeline.cache.contains(job.key):
                    await self.pipeline.produce(job)
                    self.metrics.inc("prerenders_total")
            except PictureError as exc:
                self._failed(job, attempt, exc)
            except Exception:
                log.exception("pre-render of %s failed", job.picture_id)
            finally:
                self._pending.discard(job.key)

    def _failed(self, job: Job, attempt: int, exc: PictureError) -> None:
        if exc.retryable and attempt < PRERENDER_ATTEMPTS:
            delay = PRERENDER_BACKOFF * 2 ** (attempt - 1)
            log.info("pre-render of %s failed (%s); retry in %gs", job.picture_id, exc.code, delay)
            loop = asyncio.get_running_loop()
            loop.call_later(delay, self.submit, [job], attempt + 1)
            return
        log.warning("pre-render of %s for %s failed: %s", job.picture_id, job.frame, exc.reason)

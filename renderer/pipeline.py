"""From picture request to cached file: fetch, render in worker processes, index. Does I/O.

Concurrent requests for the same picture share one render (single flight), and a render keeps
going when the client that asked for it hangs up, so its result still lands in the cache.
Renders run in a process pool (one process per core in use), fetches in a thread pool; the
event loop only moves bytes. `Prerenderer` feeds pictures new to a manifest through the same
path with bounded concurrency, so frames find them cached.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from bridge.config import ImageProfile
from renderer.cache import CacheKey, DiskCache, profile_key
from renderer.metrics import Metrics
from renderer.upstream import SourceImage, Upstream, UpstreamError
from renderer.work import render_file, warm_up

log = logging.getLogger(__name__)

FETCH_THREADS = 8
# Retries of a pre-render that failed for a reason that may pass (Immich down or 5xx).
PRERENDER_ATTEMPTS = 3
PRERENDER_BACKOFF = 5.0


class PictureError(Exception):
    """A picture that cannot be served now; `status`/`code`/`reason` become the JSON answer."""

    def __init__(self, status: int, code: str, reason: str, retryable: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.retryable = retryable


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


class RenderPool:
    """Worker processes for renders; a crashed worker costs its jobs, not the service."""

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)
        self._pool = self._make()

    def _make(self) -> ProcessPoolExecutor:
        # forkserver: workers start from a clean process, not a fork of one running threads.
        ctx = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx)

    async def render(
        self, sources: Sequence[SourceImage], profile: ImageProfile, ext: str, path: Path
    ) -> int:
        """Render into the file at `path` (written by the worker); returns its size."""
        loop = asyncio.get_running_loop()
        pool = self._pool
        args = (list(sources), profile, ext, str(path))
        try:
            ok, out = await loop.run_in_executor(pool, render_file, *args)
        except BrokenProcessPool:
            if pool is self._pool:
                log.error("a render worker died; starting a new pool")
                self._pool = self._make()
                pool.shutdown(wait=False, cancel_futures=True)
            reason = "the render worker died on this image"
            raise PictureError(502, "render_crashed", reason) from None
        if not ok or isinstance(out, str):
            raise PictureError(502, "bad_image", f"the image cannot be rendered: {out}")
        return out

    async def warm_up(self) -> None:
        """Start every worker now, so the first pictures do not wait for process start-up."""
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(self._pool, warm_up, 0.2) for _ in range(self.workers)]
        await asyncio.gather(*jobs)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class Pipeline:
    """Cache lookups and single-flight production of missing pictures."""

    def __init__(
        self,
        cache: DiskCache,
        upstream: Upstream,
        pool: RenderPool,
        metrics: Metrics,
        timeout: float,
    ) -> None:
        self.cache = cache
        self.upstream = upstream
        self.pool = pool
        self.metrics = metrics
        self.timeout = timeout
        self.threads = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="upstream")
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
        sources = await asyncio.gather(*(self._fetch(a, job) for a in job.assets))
        path = self.cache.path(job.key)
        try:
            size = await self.pool.render(sources, job.profile, job.ext, path)
        except PictureError:
            self.metrics.inc("render_errors_total")
            raise
        self.cache.adopt(job.key, size)
        self.metrics.observe("render_seconds", time.monotonic() - started)
        return Rendered(path, size)

    async def _fetch(self, asset_id: str, job: Job) -> SourceImage:
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(
            self.threads, self.upstream.fetch, asset_id, job.profile, job.folders
        )
        try:
            return await asyncio.wait_for(call, self.timeout)
        except TimeoutError:
            self.metrics.inc("upstream_errors_total", kind="timeout")
            reason = f"no image from upstream within {self.timeout:g} s"
            raise PictureError(502, "upstream_timeout", reason, retryable=True) from None
        except UpstreamError as exc:
            self.metrics.inc("upstream_errors_total", kind=exc.code)
            raise PictureError(exc.status, exc.code, exc.reason, exc.retryable) from None

    def close(self) -> None:
        self.threads.shutdown(wait=False, cancel_futures=True)
        self.pool.close()


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

"""The renderer service: wires config, cache, MQTT membership, upstream and HTTP together.

Does I/O. `Service.start()` loads the disk cache, starts the render workers, connects to MQTT
and listens; `Service.stop()` stops listening, lets requests in flight finish, and closes MQTT
and the workers. `run()` does both around SIGTERM/SIGINT for `python -m renderer`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from common import sdnotify
from common.config import Config, FrameConfig, ImageProfile
from common.configmodel import FORMATS
from renderer.accesslog import AccessLogger
from renderer.app import build_app
from renderer.cache import DiskCache
from renderer.cast import CastArea, add_routes
from renderer.castrules import RateLimit
from renderer.connections import Listener, descriptors_needed, raise_open_files_limit
from renderer.ids import parse_picture_id
from renderer.membership import Membership
from renderer.metrics import Metrics
from renderer.pipeline import Job, Pipeline, Prerenderer
from renderer.pool import RenderPool
from renderer.roster import Roster
from renderer.upstream import Upstream, UpstreamSpec

log = logging.getLogger(__name__)

# How long /healthz trusts its last Immich ping, and how long a ping may take.
HEALTH_TTL = 5.0
HEALTH_TIMEOUT = 3.0
# Requests in flight at SIGTERM get this long to finish.
SHUTDOWN_GRACE = 10.0
# Connection events (refused accepts, connections closed at the bound, malformed requests)
# are logged at most once per this many seconds each, with a count.
EVENT_INTERVAL = 60.0
METRIC_OF_EVENT = {
    "accept": "accept_errors_total",
    "shed": "connections_shed_total",
    "refused": "connections_refused_total",
    "malformed": "malformed_requests_total",
}


class Service:
    """One renderer: everything `python -m renderer` runs, startable in-process for tests."""

    def __init__(self, config: Config) -> None:
        self.config = config
        rc = config.renderer
        self.metrics = Metrics()
        self.roster = Roster(f.id for f in config.frames)
        self.cache = DiskCache(rc.cache_dir, rc.cache_max_mb << 20)
        spec = UpstreamSpec(config.immich, rc.upstream_timeout, rc.max_upstream_mb << 20)
        self.upstream = Upstream(spec)  # here only for /healthz; the workers fetch pictures
        self.pipeline = Pipeline(self.cache, RenderPool(rc.workers, spec), self.metrics)
        self.prerenderer = Prerenderer(self.pipeline, self.metrics, rc.workers)
        self.casts = CastArea(rc.cache_dir / "cast")
        self.cast_limit = RateLimit(rc.cast_per_minute)
        self.membership = Membership(
            config.mqtt, rc.mqtt_password, self.roster, self._on_added, self.metrics
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.listener = Listener(
            rc.host,
            rc.port,
            rc.max_connections,
            rc.head_timeout,
            lambda kind: self.metrics.inc(METRIC_OF_EVENT[kind]),
            EVENT_INTERVAL,
        )
        self._immich_ok: tuple[float, bool | None] = (float("-inf"), None)
        self._immich_check: asyncio.Task[bool | None] | None = None
        self._format_warned: set[tuple[str, str]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        rc = self.config.renderer
        try:
            # The casts first: they live inside the cache directory, whose walk would find
            # them half removed (a directory gone between listing and reading it).
            await asyncio.to_thread(self.casts.reset)
            await asyncio.gather(asyncio.to_thread(self.cache.load), self.pipeline.pool.start())
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise StartError(
                f"renderer.cache_dir {str(rc.cache_dir)!r}: {exc.strerror or exc}{where}"
            ) from None
        self.prerenderer.start()
        for frame in self.config.frames:
            if frame.secret is None:
                log.warning(
                    "frame %s has no secret: anyone who can reach the renderer "
                    "can fetch its pictures",
                    frame.id,
                )
        self.membership.start()
        app = build_app(self)
        add_routes(app)
        self._runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_GRACE)
        await self._runner.setup()
        await self.listener.start(
            self._runner,
            access_log=logging.getLogger("renderer.access"),
            access_log_class=AccessLogger,
        )
        log.info(
            "renderer listening on %s (%d workers, at most %d connections, cache %s holds "
            "%d files)",
            rc.listen,
            rc.workers,
            rc.max_connections,
            rc.cache_dir,
            len(self.cache),
        )

    async def stop(self) -> None:
        await self.prerenderer.stop()
        if self._runner is not None:
            await self._runner.cleanup()  # stops listening, waits for requests in flight
            self._runner = None
        self.listener.flush()
        await asyncio.to_thread(self.membership.stop)
        await self.pipeline.close()
        log.info("renderer stopped")

    # -- what the routes need --------------------------------------------------------------

    def profile(self, frame: FrameConfig) -> ImageProfile:
        """The frame's render profile; the manifest summary's `format` wins over the config's.

        The bridge announces the format to the frame in the summary, so serving that keeps the
        frame's expectation right even while the two services run different config revisions.
        """
        summary = self.roster.summary(frame.id)
        wanted = summary.format if summary is not None else frame.image.format
        if wanted == frame.image.format or wanted not in FORMATS:
            return frame.image
        if (frame.id, wanted) not in self._format_warned:
            self._format_warned.add((frame.id, wanted))
            log.warning(
                "frame %s: manifest says format %s, config says %s; serving %s",
                frame.id,
                wanted,
                frame.image.format,
                wanted,
            )
        return replace(frame.image, format=wanted)

    def job(
        self, frame: FrameConfig, picture_id: str, ext: str, version: str | None = None
    ) -> Job | None:
        """The render job for a picture of the frame's manifest; None when it is not in it.

        `version` given: a page just announced it, possibly before the summary naming its shard.
        """
        assets = parse_picture_id(picture_id)
        version = version or self.roster.version(frame.id, picture_id)
        if assets is None or version is None:
            return None
        folders = tuple(str(s.value) for s in frame.sources if s.kind == "folder")
        return Job(frame.id, picture_id, assets, version, ext, self.profile(frame), folders)

    def _on_added(self, frame_id: str, added: Mapping[str, str]) -> None:
        """MQTT thread: pictures new to a manifest; queue their renders on the event loop."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._prerender, frame_id, dict(added))

    def _prerender(self, frame_id: str, added: dict[str, str]) -> None:
        frame = self.config.frame(frame_id)
        if frame is None:
            return
        jobs = (self.job(frame, pid, "bmp", version) for pid, version in sorted(added.items()))
        self.prerenderer.submit(j for j in jobs if j is not None)

    def refresh_gauges(self) -> None:
        self.metrics.set("cache_bytes", self.cache.total_bytes)
        self.metrics.set("cache_files", len(self.cache))
        self.metrics.set("cache_evictions_total", self.cache.evictions)
        self.metrics.set("connections_open", self.listener.open)

    async def health(self) -> dict[str, Any]:
        immich = await self._immich_reachable()
        return {
            "renderer": "ok",
            "broker": "connected" if self.membership.connected else "disconnected",
            "immich": {None: "not configured", True: "reachable", False: "unreachable"}[immich],
            "frames": {f.id: self.roster.count(f.id) for f in self.config.frames},
            "cache": {"files": len(self.cache), "bytes": self.cache.total_bytes},
        }

    async def _immich_reachable(self) -> bool | None:
        checked_at, value = self._immich_ok
        if self.config.immich is None:
            return None
        if time.monotonic() - checked_at < HEALTH_TTL:
            return value
        if self._immich_check is None:  # one ping at a time, however many health checks wait
            check = asyncio.ensure_future(self._ping())
            check.add_done_callback(self._ping_done)
            self._immich_check = check
        # Shielded, and forgotten only once it ends: a check whose client hangs up must not
        # cancel the ping the others wait for, nor let the next check start a second one.
        return await asyncio.shield(self._immich_check)

    def _ping_done(self, check: asyncio.Task[bool | None]) -> None:
        if self._immich_check is check:
            self._immich_check = None

    async def _ping(self) -> bool | None:
        try:
            ok = await asyncio.wait_for(asyncio.to_thread(self.upstream.ping), HEALTH_TIMEOUT)
        except TimeoutError:
            ok = False
        self._immich_ok = (time.monotonic(), ok)
        return ok


class StartError(Exception):
    """The service could not start (e.g. its port is taken); the message says why."""


async def serve(config: Config, stop: asyncio.Event) -> None:
    """Run the service until `stop` is set."""
    _check_open_files(config)
    service = Service(config)
    try:
        await service.start()
    except StartError:
        await service.stop()
        raise
    except OSError as exc:
        await service.stop()
        listen = config.renderer.listen
        raise StartError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    sdnotify.notify(sdnotify.READY)
    watchdog = asyncio.create_task(_feed_watchdog(stop))
    try:
        await stop.wait()
    finally:
        sdnotify.notify(sdnotify.STOPPING)
        watchdog.cancel()
        await service.stop()


def _check_open_files(config: Config) -> None:
    """Raise the open files limit as far as the connection bound needs (the hard limit allows
    that without privileges); warn when even the hard limit is too low."""
    rc = config.renderer
    needed = descriptors_needed(rc.max_connections, rc.workers)
    soft = raise_open_files_limit(needed)
    if soft < needed:
        log.warning(
            "open files limit %g is below the %d that renderer.max_connections %d needs: "
            "raise LimitNOFILE (systemd) or ulimits nofile (compose), or lower max_connections",
            soft,
            needed,
            rc.max_connections,
        )


async def _feed_watchdog(stop: asyncio.Event) -> None:
    """Tell systemd we are alive while the event loop runs (no-op outside a watchdog unit)."""
    interval = sdnotify.watchdog_interval()
    while interval and not stop.is_set():
        sdnotify.notify(sdnotify.WATCHDOG)
        await asyncio.sleep(interval)


def run(config: Config) -> None:
    """`python -m renderer`: serve until SIGTERM or SIGINT, then shut down gracefully."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop)

    asyncio.run(main())

"""The render worker processes, each fed one job at a time over its own pipe. Does I/O.

The event loop writes a job to an idle worker's pipe and reads the answer when the pipe becomes
readable (`loop.add_reader`), so the serving process spends no thread and no lock per picture:
a job costs it two small pickles and two system calls. A worker that dies (out of memory on a
hostile image, killed by an operator) fails only the job it held, with 502 `render_crashed`,
and is replaced at once. Workers start from the `forkserver`, never as a fork of a process
that runs threads, and are warmed up (codecs, fonts) before they take their first job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from renderer.castwork import CastTask
from renderer.errors import FailureTuple, PictureError
from renderer.upstream import UpstreamSpec
from renderer.work import Task, serve

log = logging.getLogger(__name__)

Outcome = int | FailureTuple
CRASHED: FailureTuple = (502, "render_crashed", "the render worker died on this image", False)
STOPPED: FailureTuple = (503, "shutting_down", "the renderer is stopping", False)
# How long `close` waits for a worker to finish its job and exit before killing it.
STOP_GRACE = 10.0


@dataclass(eq=False)
class _Worker:
    process: BaseProcess
    conn: Connection
    ready: asyncio.Future[None]
    job: asyncio.Future[Outcome] | None = None
    alive: bool = field(default=True)


class RenderPool:
    """`workers` processes running `renderer.work.serve`; `produce` queues a job for them."""

    def __init__(self, workers: int, upstream: UpstreamSpec) -> None:
        self.workers = max(1, workers)
        self.upstream = upstream
        self._ctx = multiprocessing.get_context("forkserver")
        self._pool: list[_Worker] = []
        self._queue: deque[tuple[Task | CastTask, asyncio.Future[Outcome]]] = deque()
        self._closed = False

    async def start(self) -> None:
        """Start every worker and wait until each is warmed up."""
        self._pool = [self._spawn() for _ in range(self.workers)]
        await asyncio.gather(*(w.ready for w in self._pool))

    async def produce(self, task: Task | CastTask) -> int:
        """Run `task` in a worker, which writes the file at `task.path`; returns its size."""
        if self._closed:
            raise PictureError(*STOPPED)
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        if not any(w.alive for w in self._pool):
            raise PictureError(503, "no_workers", "no render worker is running")
        self._queue.append((task, fut))
        self._dispatch()
        out = await fut
        if isinstance(out, int):
            return out
        raise PictureError(*out)

    def pids(self) -> list[int]:
        """The worker processes' ids."""
        return sorted(w.process.pid for w in self._pool if w.alive and w.process.pid is not None)

    async def close(self) -> None:
        """Fail queued jobs, let running ones finish (up to `STOP_GRACE`), stop the workers."""
        self._closed = True
        self._fail_queued(PictureError(*STOPPED))
        running = [w.job for w in self._pool if w.job is not None]
        if running:
            await asyncio.wait(running, timeout=STOP_GRACE)
        workers, self._pool = self._pool, []
        for w in workers:
            self._detach(w)
            job, w.job = w.job, None
            if job is not None and not job.done():  # past the grace: no answer will be read
                job.set_result(STOPPED)
            with contextlib.suppress(OSError):
                w.conn.send(None)
            w.conn.close()
        await asyncio.to_thread(_join, [w.process for w in workers])

    # -- inside ----------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        loop = asyncio.get_running_loop()
        ours, theirs = self._ctx.Pipe()
        process = self._ctx.Process(
            target=serve, args=(theirs, self.upstream), name="renderer-worker", daemon=True
        )
        process.start()
        theirs.close()  # the worker's end lives in the worker; EOF here then means it died
        worker = _Worker(process, ours, loop.create_future())
        loop.add_reader(ours.fileno(), self._readable, worker)
        return worker

    def _dispatch(self) -> None:
        for worker in self._pool:
            if not self._queue:
                return
            if worker.job is not None or not worker.ready.done() or not worker.alive:
                continue
            task, fut = self._queue.popleft()
            while fut.done():  # its caller gave up while it waited
                if not self._queue:
                    return
                task, fut = self._queue.popleft()
            worker.job = fut
            try:
                worker.conn.send(task)
            except OSError:
                self._lost(worker)

    def _readable(self, worker: _Worker) -> None:
        try:
            out = worker.conn.recv()
        except (EOFError, OSError):
            self._lost(worker)
            return
        if not worker.ready.done():
            worker.ready.set_result(None)
        elif worker.job is not None:
            job, worker.job = worker.job, None
            if not job.done():
                job.set_result(out)
        self._dispatch()

    def _lost(self, worker: _Worker) -> None:
        """A worker died: fail its job, reap it, and start another in its place."""
        self._detach(worker)
        worker.conn.close()
        worker.process.join(0)
        job, worker.job = worker.job, None
        if job is not None and not job.done():
            job.set_result(CRASHED)
        if not worker.ready.done():  # died before its first job: another would die the same way
            pid, code = _who(worker)
            why = f"a render worker died while starting (pid {pid}, exit code {code})"
            log.error("%s", why)
            worker.ready.set_exception(RuntimeError(why))
            worker.ready.exception()  # `start` reports it; nobody else waits on it
            if not any(w.alive for w in self._pool):
                self._fail_queued(PictureError(503, "no_workers", "no render worker is running"))
            return
        if self._closed or worker not in self._pool:
            return
        log.error("render worker %s died (exit code %s); starting another", *_who(worker))
        self._pool[self._pool.index(worker)] = self._spawn()

    def _fail_queued(self, exc: PictureError) -> None:
        while self._queue:
            _, fut = self._queue.popleft()
            if not fut.done():
                fut.set_exception(exc)

    def _detach(self, worker: _Worker) -> None:
        if worker.alive:
            worker.alive = False
            asyncio.get_running_loop().remove_reader(worker.conn.fileno())


def _who(worker: _Worker) -> tuple[int | None, int | None]:
    return worker.process.pid, worker.process.exitcode


def _join(processes: list[BaseProcess]) -> None:
    # One grace for all of them: a worker still busy holds the others' wait up to it, not past.
    deadline = time.monotonic() + STOP_GRACE
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            process.kill()
            process.join(1)

"""What a render worker process runs: fetch the source, render it, write the finished cache file.

`serve` is a worker's whole life (`renderer.pool` starts it): it builds its own `Upstream` (and
so its own Immich session), warms up, then answers one job at a time over its pipe, so the
serving process only dispatches. A job is a picture's ids, profile and cache path; the answer
is the file's size or a failure as plain data (`PictureError.as_tuple()`). Nothing is raised
across the boundary.
Each fetch is bounded by the upstream timeout overall with an interval timer, because a
socket timeout alone lets an Immich that drips bytes hold a worker forever.
I/O: HTTP to Immich, folder files, and the one cache file.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType

from common.config import ImageProfile
from renderer import bmp, imaging
from renderer.cache import write_atomic
from renderer.castwork import CastTask, produce_cast
from renderer.errors import FailureTuple, PictureError
from renderer.upstream import SourceImage, Upstream, UpstreamSpec

# Longest failure reason passed back; a decoder's message can quote the bytes it choked on.
_REASON_LIMIT = 300

_upstream: Upstream | None = None


@dataclass(frozen=True)
class Task:
    """One picture to produce: its assets, the frame's folder sources, profile and cache file."""

    assets: tuple[str, ...]
    folders: tuple[str, ...]
    profile: ImageProfile
    ext: str
    path: str


class _Late(BaseException):
    """Raised by the fetch timer; a BaseException so no library's `except Exception` eats it."""


def serve(conn: Connection, spec: UpstreamSpec) -> None:
    """A worker's life: warm up, say so (its pid), then one job at a time until told to stop.

    Signals to stop are the serving process's to act on: it finishes or fails the jobs in
    flight and then closes the pipe, which ends this loop.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure(spec)
    warm_up()
    try:
        conn.send(os.getpid())
        while (task := conn.recv()) is not None:
            conn.send(_answer(task))
    except (EOFError, OSError):
        pass  # the serving process is gone: nothing is left to answer


def _answer(task: Task | CastTask) -> int | FailureTuple:
    try:
        return produce_cast(task) if isinstance(task, CastTask) else produce(task)
    except Exception as exc:
        # Something nobody foresaw (an odd file, a library bug) costs this picture, not the
        # worker: without this an OSError would end the loop above as if the pipe had closed.
        return (502, "render_failed", f"the picture could not be made: {exc!r}"[:300], False)


def configure(spec: UpstreamSpec) -> None:
    """Where this worker process fetches sources from."""
    global _upstream
    _upstream = Upstream(spec)


def produce(task: Task) -> int | FailureTuple:
    """Fetch, render and store one picture: the cache file's size, or why not."""
    try:
        sources = [_fetch(asset_id, task) for asset_id in task.assets]
    except PictureError as exc:
        return exc.as_tuple()
    _, out = render_job(sources, task.profile, task.ext)
    if isinstance(out, str):
        return (502, "bad_image", f"the image cannot be rendered: {out}", False)
    try:
        write_atomic(Path(task.path), out)
    except OSError as exc:
        return (503, "cache_unwritable", f"cannot write the cache file: {exc.strerror}", True)
    return len(out)


def _fetch(asset_id: str, task: Task) -> SourceImage:
    upstream = _upstream
    if upstream is None:
        raise PictureError(500, "not_configured", "render worker started without a source")
    try:
        with _deadline(upstream.timeout):
            return upstream.fetch(asset_id, task.profile, task.folders)
    except _Late:
        upstream.reset()  # the cut-off read may have left the connection half used
        reason = f"no image from upstream within {upstream.timeout:g} s"
        raise PictureError(502, "upstream_timeout", reason, retryable=True) from None


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise `_Late` in this (main) thread once `seconds` have passed, even inside a read."""

    def fire(signum: int, frame: FrameType | None) -> None:
        raise _Late

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render_job(
    sources: Sequence[SourceImage], profile: ImageProfile, ext: str
) -> tuple[bool, bytes | str]:
    """(True, file bytes) or (False, why the picture cannot be rendered)."""
    try:
        if len(sources) == 1:
            s = sources[0]
            img = imaging.render(s.data, s.content_type, profile, s.faces, s.meta)
        else:
            a, b = sources
            img = imaging.render_pair(
                a.data,
                b.data,
                (a.content_type, b.content_type),
                profile,
                (a.faces, b.faces),
                (a.meta, b.meta),
            )
        data = bmp.encode_jpeg(img) if ext == "jpg" else bmp.encode(img, profile.format)
    except imaging.ImageError as exc:
        return False, exc.reason[:_REASON_LIMIT]
    except Exception as exc:  # MemoryError included: a hostile image must not end the worker
        return False, f"{type(exc).__name__}: {exc}"[:_REASON_LIMIT]
    return True, data


def warm_up() -> None:
    """Load a worker's codecs and fonts with one tiny render, before its first real job."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(buf, "JPEG")
    render_job([SourceImage(buf.getvalue(), "image/jpeg")], ImageProfile(caption="{city}"), "bmp")

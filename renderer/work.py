"""The render job that runs in worker processes: source bytes in, finished cache file out.

Runs in a `ProcessPoolExecutor`, so everything crossing the boundary is plain picklable data
and nothing is raised across it: a picture that cannot be rendered comes back as a reason.
The worker writes the file into the cache itself (atomically), so the finished picture never
travels back through a pipe and the serving process only indexes it. I/O: that one file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bridge.config import ImageProfile
from renderer import bmp, imaging
from renderer.cache import write_atomic
from renderer.upstream import SourceImage

# Longest failure reason passed back; a decoder's message can quote the bytes it choked on.
_REASON_LIMIT = 300


def render_file(
    sources: Sequence[SourceImage], profile: ImageProfile, ext: str, path: str
) -> tuple[bool, int | str]:
    """Render into the cache file at `path`: (True, its size) or (False, why not)."""
    ok, out = render_job(sources, profile, ext)
    if not ok or isinstance(out, str):
        return False, str(out)
    try:
        write_atomic(Path(path), out)
    except OSError as exc:
        return False, f"cannot write the cache file: {exc.strerror}"
    return True, len(out)


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


def warm_up(pause: float) -> int:
    """Start a worker's codecs and fonts with one tiny render; returns the worker's pid.

    The pause keeps this worker busy long enough that the pool starts the next one too.
    """
    import io
    import os
    import time

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(buf, "JPEG")
    render_job([SourceImage(buf.getvalue(), "image/jpeg")], ImageProfile(caption="{city}"), "bmp")
    time.sleep(pause)
    return os.getpid()

"""A cast's announcement read, and its image downloaded and checked: what `cast.Cast` needs
only when a cast comes, so it is imported then (its code takes no heap before the first cast).
Does network and file I/O (the fetcher, the card's tmp folder).

The image never enters the store: it is downloaded into the card's tmp folder (emptied at boot)
and checked like a picture. An announcement that cannot be read or a download that fails is a
`CastError` (`cast_failed`).
"""

import json
import os

from . import bmp, files
from .errors import FrameError, out_of_memory

try:  # the board has no collections.abc
    from collections.abc import Callable

    from .fetch import Fetcher
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

MAX_SECONDS = 600  # as the renderer bounds them


class CastError(FrameError):
    def __init__(self, detail: str) -> None:
        super().__init__("cast_failed", detail[:160])


def parse(payload: bytes | bytearray | memoryview) -> tuple[str, int, str]:
    """(url, seconds, id) of an announcement; CastError when it is not one."""
    try:
        doc = json.loads(bytes(payload))
    except ValueError:
        raise CastError("announcement is not JSON") from None
    if not isinstance(doc, dict):
        raise CastError("announcement is not a JSON object")
    url, seconds, cast_id = doc.get("url"), doc.get("seconds"), doc.get("id")
    if not isinstance(url, str) or not (url.startswith("http://") or url.startswith("https://")):
        raise CastError("announcement has no http(s) url")
    # type() and not isinstance(): on the board a bool is no int, under CPython it is
    if type(seconds) is not int or not 1 <= seconds <= MAX_SECONDS:
        raise CastError(f"seconds must be 1 to {MAX_SECONDS}")
    return url, seconds, str(cast_id)[:40] if cast_id is not None else ""


def fetch(url: str, path: str, fetcher: Fetcher, between: Callable[[], None]) -> None:
    """Download the image at `url` into `path`, checked; raises FrameError when it fails."""
    part = path.rsplit("/", 1)[0] + "/cast.part"
    try:
        length = fetcher.download(url, part, between)
        problem = _check(part, length)
        if problem:
            raise CastError(problem)
        files.rename(part, path)
    except FrameError as e:
        raise CastError(e.detail) from None
    except MemoryError as e:
        raise out_of_memory("cast", e) from None
    except OSError as e:
        raise CastError(f"cannot store the cast: {e}") from None
    finally:
        files.remove(part)


def _check(path: str, length: int | None) -> str | None:
    with open(path, "rb") as f:
        head = f.read(bmp.HEAD)
    size = os.stat(path)[6]
    if length is not None and size != length:
        return f"got {size} of {length} bytes"
    return bmp.check(head, size)

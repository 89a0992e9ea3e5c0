"""Small file helpers over what CircuitPython's `os` has, and the card's error type. Does I/O.

The board has no os.path, os.makedirs or os.replace; these helpers are the whole toolbox.
"""

import os

from .errors import FrameError


class StoreError(FrameError):
    """A card problem: code `download_failed` (bad file), `sd_full` or `sd_error`."""


def listdir(path: str) -> list[str]:
    """Names in a folder; [] when it does not exist."""
    try:
        return os.listdir(path)
    except OSError:
        return []


def exists(path: str) -> bool:
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def remove(path: str) -> bool:
    """Remove a file; False when it was not there."""
    try:
        os.remove(path)
        return True
    except OSError:
        return False


def mkdir(path: str) -> None:
    if not exists(path):
        os.mkdir(path)


def rename(src: str, dst: str) -> None:
    """Rename, replacing `dst` (os.rename does on the board and on POSIX)."""
    try:
        os.rename(src, dst)
    except OSError:
        if not remove(dst):  # a file system whose rename does not replace
            raise
        os.rename(src, dst)


def write_atomic(path: str, data: bytes, pad: bytes = b"", times: int = 0) -> None:
    """Replace a small file so a reader finds the old or the new bytes, never half of them.

    The file is `data`, then `pad` `times` over: written piece by piece, so no block of the
    whole file's size is wanted from the heap."""
    try:
        with open(path + ".tmp", "wb") as f:
            f.write(data)
            for _ in range(times):
                f.write(pad)
        rename(path + ".tmp", path)
    except OSError as e:
        raise StoreError("sd_error", f"write {path}: {e}") from None

"""Picture ids for photos in a local folder source, shared by the bridge and the renderer.

A folder photo has no Immich UUID, so it gets a stable UUID derived from its path relative to
the folder: the same file always has the same id on every machine, and the contract's id rules
(lower-case, 36 characters) hold for it. `folder_asset_id` is pure; `scan_folder` reads the
directory tree (I/O).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

# The formats the renderer decodes; everything else in a folder is ignored.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp"})

# One namespace prefix, so ids can never collide with another project's uuid5 of the same path.
_PREFIX = "titanoframe:"


def folder_asset_id(relpath: str) -> str:
    """The picture id of the file at `relpath` (POSIX, relative to the folder source)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, _PREFIX + relpath))


def is_image_name(name: str) -> bool:
    """True for a visible file whose extension is one of IMAGE_EXTENSIONS."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def scan_folder(root: str | Path) -> dict[str, tuple[str, int, int]]:
    """Every image under `root`: {id: (relative POSIX path, mtime_ns, size)}.

    Hidden files and folders are skipped and symbolic links to folders are not followed, so a
    scan stays inside `root`. A missing or unreadable `root` gives an empty result: the caller
    decides whether that is an error.
    """
    base = Path(root)
    found: dict[str, tuple[str, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not is_image_name(name):
                continue
            full = Path(dirpath) / name
            try:
                st = full.stat()
            except OSError:
                continue  # vanished or unreadable between listing and stat
            if not full.is_file():
                continue
            rel = full.relative_to(base).as_posix()
            found[folder_asset_id(rel)] = (rel, st.st_mtime_ns, st.st_size)
    return found

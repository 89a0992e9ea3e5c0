"""Where a picture's source bytes come from: Immich's preview, or a file in a folder source.

Does I/O (HTTP to Immich, file reads). Fetches run in the render worker processes, each with
its own `Upstream` built from an `UpstreamSpec`; the serving process keeps one only to ping
Immich for /healthz. Every failure becomes a `PictureError` carrying the HTTP status the
renderer answers with and a reason safe to show. Besides the bytes it fetches what the render
profile needs: face boxes for the `smart` fit and the asset's metadata for a caption. When
Immich cannot give them for good (a missing scope), the picture is rendered without them; when
it may soon (unreachable, 5xx), the picture fails as retryable (503 with Retry-After) rather than
be cached, and kept by frames, without them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.config import ImageProfile, ImmichConfig
from common.folderids import scan_folder
from common.immich import (
    ImmichClient,
    ImmichError,
    ImmichNotFound,
    ImmichNotReady,
    ImmichResponseError,
    ImmichUnreachable,
)
from renderer.errors import PictureError

if TYPE_CHECKING:  # the HTTP process never needs Pillow itself
    from renderer.imaging import FaceBox

log = logging.getLogger(__name__)

# Content types that say nothing about the format: the decoder sniffs the bytes instead.
_UNTYPED = frozenset({"", "application/octet-stream", "binary/octet-stream"})

# A folder is re-scanned for an unknown id at most this often, so a flood of requests for ids
# that are not there cannot turn into a flood of directory walks.
RESCAN_INTERVAL = 10.0
SOCKET_TIMEOUT_MARGIN = 1.0


@dataclass(frozen=True)
class UpstreamSpec:
    """Where sources come from and the limits on fetching them; plain data, sent to workers."""

    immich: ImmichConfig | None
    timeout: float
    max_bytes: int


@dataclass(frozen=True)
class SourceImage:
    """One asset's bytes plus what the renderer may use to place and caption it."""

    data: bytes
    content_type: str | None
    faces: tuple[FaceBox, ...] = ()
    meta: Mapping[str, Any] | None = None


@dataclass
class _Folder:
    root: Path
    ids: dict[str, str] = field(default_factory=dict)
    scanned_at: float = float("-inf")


def caption_meta(
    asset: Mapping[str, Any], albums: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Caption fields (common.caption.FIELDS) from an Immich asset and its albums. Pure.

    `album` is the first of the asset's album names in alphabetical order, so it is stable.
    """
    raw_exif, raw_people = asset.get("exifInfo"), asset.get("people")
    exif: Mapping[str, Any] = raw_exif if isinstance(raw_exif, dict) else {}
    listed = raw_people if isinstance(raw_people, list) else []
    people = [p.get("name") for p in listed if isinstance(p, dict)]
    camera = " ".join(str(exif[k]) for k in ("make", "model") if exif.get(k))
    return {
        "taken": exif.get("dateTimeOriginal") or asset.get("localDateTime"),
        "city": exif.get("city"),
        "state": exif.get("state"),
        "country": exif.get("country"),
        "description": exif.get("description"),
        "people": [p for p in people if isinstance(p, str) and p],
        "camera": camera or None,
        "filename": asset.get("originalFileName"),
        "album": min(names) if (names := _album_names(albums)) else None,
    }


def _album_names(albums: Iterable[Mapping[str, Any]]) -> list[str]:
    return [
        a["albumName"] for a in albums if isinstance(a.get("albumName"), str) and a["albumName"]
    ]


def face_boxes(faces: Iterable[Mapping[str, Any]]) -> tuple[FaceBox, ...]:
    """Immich face records as the renderer's face boxes; malformed records are skipped. Pure."""
    boxes: list[FaceBox] = []
    for face in faces:
        try:
            x1, y1, x2, y2 = (float(face[f"boundingBox{k}"]) for k in ("X1", "Y1", "X2", "Y2"))
            boxes.append((x1, y1, x2, y2, int(face["imageWidth"]), int(face["imageHeight"])))
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
    return tuple(boxes)


def immich_failure(exc: ImmichError) -> PictureError:
    """The renderer's answer to an Immich failure. Pure."""
    if isinstance(exc, ImmichNotFound):
        return PictureError(404, "not_in_immich", f"Immich has no such asset: {exc.reason}")
    if isinstance(exc, ImmichNotReady):
        # A fresh upload: Immich is still making its preview. Nothing is cached, and the frame
        # (told 503 with Retry-After) and the pre-render both ask again shortly.
        reason = f"Immich has no preview of this asset yet: {exc.reason}"
        return PictureError(503, "preview_not_ready", reason, retryable=True)
    if isinstance(exc, ImmichUnreachable):
        return PictureError(502, "immich_unreachable", exc.reason, retryable=True)
    retry = isinstance(exc, ImmichResponseError) and (exc.status or 0) >= 500
    return PictureError(502, "immich_error", exc.reason, retryable=retry)


class Upstream:
    """Fetches source images; one Immich client per thread (a client's connection is not shared)."""

    def __init__(self, spec: UpstreamSpec) -> None:
        self.immich = spec.immich
        self.timeout = spec.timeout
        self.max_bytes = spec.max_bytes
        self._folders: dict[str, _Folder] = {}
        self._local = threading.local()
        self._scan_lock = threading.Lock()

    def _client(self) -> ImmichClient:
        client = getattr(self._local, "client", None)
        if client is None:
            assert self.immich is not None
            # The worker bounds each fetch at `timeout` overall; the socket timeout is a little
            # longer so that bound, not a read timeout, is what a slow Immich runs into.
            socket_timeout = self.timeout + SOCKET_TIMEOUT_MARGIN
            client = ImmichClient(self.immich.url, self.immich.api_key, socket_timeout)
            self._local.client = client
        return client

    def reset(self) -> None:
        """Drop this thread's Immich client, e.g. after a fetch was cut off mid-read."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            client.close()

    def ping(self) -> bool | None:
        """Immich reachability; None when no Immich is configured."""
        return None if self.immich is None else self._client().ping()

    def fetch(
        self, asset_id: str, profile: ImageProfile, folders: Iterable[str] = ()
    ) -> SourceImage:
        """The source image of one asset (blocking).

        `folders` are the frame's folder sources, looked in before Immich.
        """
        path = self._folder_file(asset_id, list(folders)) if folders else None
        if path is not None:
            return self._read_file(path)
        if self.immich is None:
            raise PictureError(404, "not_found", "no folder source holds this picture")
        return self._from_immich(asset_id, profile)

    def _from_immich(self, asset_id: str, profile: ImageProfile) -> SourceImage:
        client = self._client()
        # The small requests first: when one of them fails for a while, the preview's
        # megabytes are not fetched for nothing.
        faces, meta = self._details(client, asset_id, profile)
        try:
            data, ctype = client.thumbnail(asset_id, "preview", max_bytes=self.max_bytes)
        except ImmichError as exc:
            raise immich_failure(exc) from None
        return SourceImage(data, None if ctype in _UNTYPED else ctype, faces, meta)

    def _details(
        self, client: ImmichClient, asset_id: str, profile: ImageProfile
    ) -> tuple[tuple[FaceBox, ...], Mapping[str, Any] | None]:
        """Face boxes and caption fields, as far as the profile needs them.

        A failure that may pass (Immich unreachable or 5xx) fails the picture as retryable:
        rendered without its caption it would be cached, and kept by frames, as if final. One
        that will not pass (a missing scope, an unknown id) leaves them out for good.
        """
        faces: tuple[FaceBox, ...] = ()
        meta: Mapping[str, Any] | None = None
        try:
            if profile.fit == "smart":
                faces = face_boxes(client.faces(asset_id))
            if profile.caption:
                # Which albums hold the asset is one more request: only when the caption asks.
                albums = client.albums_of(asset_id) if "{album" in profile.caption else []
                meta = caption_meta(client.asset(asset_id), albums)
        except ImmichError as exc:
            if immich_failure(exc).retryable:
                reason = f"the picture's faces or caption could not be fetched: {exc.reason}"
                raise PictureError(503, "details_unavailable", reason, retryable=True) from None
            log.info("rendering %s without faces/caption data: %s", asset_id, exc.reason)
        return faces, meta

    def _read_file(self, path: Path) -> SourceImage:
        try:
            st = path.stat()
            size = st.st_size
            if size > self.max_bytes:
                raise PictureError(
                    502, "too_large", f"file is {size} bytes, over the {self.max_bytes}-byte limit"
                )
            data = path.read_bytes()
        except OSError as exc:
            raise PictureError(
                404, "not_found", f"folder file unreadable: {exc.strerror}"
            ) from None
        # No content type: the decoder goes by the file's signature, not its name. The bridge
        # dates folder photos by modification time, and so does their caption.
        taken = datetime.fromtimestamp(st.st_mtime)
        return SourceImage(data, None, (), {"filename": path.name, "taken": taken})

    def _folder_file(self, asset_id: str, roots: list[str]) -> Path | None:
        with self._scan_lock:
            folders = [self._folders.setdefault(r, _Folder(Path(r))) for r in roots]
        for folder in folders:
            rel = folder.ids.get(asset_id)
            if rel is not None:
                return folder.root / rel
        with self._scan_lock:
            now = time.monotonic()
            for folder in folders:
                if now - folder.scanned_at >= RESCAN_INTERVAL:
                    folder.ids = {k: v[0] for k, v in scan_folder(folder.root).items()}
                    folder.scanned_at = now
                rel = folder.ids.get(asset_id)
                if rel is not None:
                    return folder.root / rel
        return None

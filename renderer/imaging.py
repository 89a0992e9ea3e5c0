"""Turn an Immich preview (or a folder photo) into the exact 480×320 picture a frame shows.

Pure: bytes, content type, render profile, face boxes and metadata in; a PIL RGB image out. No
I/O. Decoding trusts the content type, asks the JPEG decoder for the smallest power-of-two scale
that still covers the target (a 4032×3024 photo decodes at 504×378), orients by EXIF on that
small image, then fits it: ``contain`` (black bars), ``cover`` (centre crop), ``blur`` (bars
filled with a blurred copy) or ``smart`` (a cover crop that keeps the faces in frame).
Every failure, whatever the decoder raised, comes out as ``ImageError``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from PIL import ExifTags, Image, ImageFilter, UnidentifiedImageError

from common.caption import CaptionError, format_caption, validate_caption
from common.configmodel import FITS
from renderer.caption import draw_caption

__all__ = [
    "FITS",
    "HEIGHT",
    "WIDTH",
    "FaceBox",
    "ImageError",
    "Profile",
    "render",
    "render_pair",
    "validate_caption",
]

WIDTH, HEIGHT = 480, 320

# (x1, y1, x2, y2, image_width, image_height): a face box in the coordinates of an image of
# image_width × image_height, as Immich reports it.
FaceBox = tuple[float, float, float, float, int, int]
Size = tuple[int, int]
Box = tuple[float, float, float, float]

_FORMATS = {
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/webp": "WEBP",
    "image/png": "PNG",
}
_MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"))
_ROTATED = {5, 6, 7, 8}  # EXIF orientations that swap width and height
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_UNTYPED = {"", "application/octet-stream", "binary/octet-stream"}
_BLUR_SIZE = (60, 40)  # the blurred background is made this small, then enlarged
_BLUR_RADIUS = 2.5
_BLUR_DIM = 0.7  # darken the background so the picture itself stands out
# A face box is used only on an image of its reference image's shape, within this much (decoding
# at a reduced scale rounds each side).
_SHAPE_TOLERANCE = 0.03


class ImageError(Exception):
    """A picture that cannot be rendered; ``reason`` says why in words fit for a log or a 502."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Profile(Protocol):
    """The part of a frame's render profile that shapes the picture (config.ImageProfile)."""

    @property
    def fit(self) -> str: ...

    @property
    def caption(self) -> str | None: ...


def render(
    data: bytes,
    content_type: str | None,
    profile: Profile,
    faces: Sequence[FaceBox] = (),
    meta: Mapping[str, Any] | None = None,
) -> Image.Image:
    """One photo as the frame's exact WIDTH×HEIGHT RGB picture."""
    canvas = _picture(data, content_type, profile.fit, faces, (WIDTH, HEIGHT))
    _caption(canvas, profile.caption, meta, (0, 0, WIDTH, HEIGHT))
    return canvas


def render_pair(
    a: bytes,
    b: bytes,
    content_types: tuple[str | None, str | None],
    profile: Profile,
    faces: tuple[Sequence[FaceBox], Sequence[FaceBox]] = ((), ()),
    metas: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None] = (None, None),
) -> Image.Image:
    """Two portraits side by side (picture id ``<a>+<b>``), each fitted into its own half."""
    half = (WIDTH // 2, HEIGHT)
    canvas = Image.new("RGB", (WIDTH, HEIGHT))
    for i, data in enumerate((a, b)):
        side = _picture(data, content_types[i], profile.fit, faces[i], half)
        canvas.paste(side, (i * half[0], 0))
        _caption(canvas, profile.caption, metas[i], (i * half[0], 0, (i + 1) * half[0], HEIGHT))
    return canvas


def _picture(
    data: bytes, content_type: str | None, fit: str, faces: Sequence[FaceBox], size: Size
) -> Image.Image:
    if fit not in FITS:
        raise ImageError(f"unknown fit {fit!r}, expected one of {', '.join(FITS)}")
    fmt = _format(data, content_type)
    try:
        img = _decode(data, fmt, fit, size)
        return _fit(img, fit, _scale_faces(faces, img.size), size)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image too large: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"not a valid {fmt} image") from exc
    except Exception as exc:  # decoders raise anything from OSError to SyntaxError
        raise ImageError(f"cannot decode image: {exc}") from exc


def _caption(
    canvas: Image.Image,
    fmt: str | None,
    meta: Mapping[str, Any] | None,
    box: tuple[int, int, int, int],
) -> None:
    if not fmt:
        return
    try:
        text = format_caption(fmt, meta or {})
    except CaptionError as exc:
        raise ImageError(str(exc)) from exc
    draw_caption(canvas, text, box)


def _format(data: bytes, content_type: str | None) -> str:
    """The Pillow decoder to use: the content type's, or the bytes' signature when it says none."""
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in _UNTYPED:
        for magic, fmt in _MAGIC:
            if data.startswith(magic):
                return fmt
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return "WEBP"
        raise ImageError("not a JPEG, WEBP or PNG image")
    known = _FORMATS.get(mime)
    if known is None:
        raise ImageError(f"unsupported content type {content_type!r}")
    return known


def _decode(data: bytes, fmt: str, fit: str, size: Size) -> Image.Image:
    """Decode no larger than the fit needs, EXIF-oriented, as RGB."""
    if not data:
        raise ImageError("empty image")
    img: Image.Image = Image.open(io.BytesIO(data), formats=[fmt])
    width, height = img.size
    if width * height > (Image.MAX_IMAGE_PIXELS or 1 << 62):
        raise ImageError(f"image too large: {width}×{height} pixels")
    orientation = _orientation(img)
    if fmt == "JPEG":
        shown = (height, width) if orientation in _ROTATED else (width, height)
        need = _needed(shown, fit, size)
        img.draft("RGB", (need[1], need[0]) if orientation in _ROTATED else need)
    img.load()
    turn = _TRANSPOSE.get(orientation)
    if turn is not None:
        img = img.transpose(turn)  # what ImageOps.exif_transpose does, minus rewriting EXIF
    return _to_rgb(img)


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # a damaged EXIF block only costs us the rotation
        return 1
    return value if isinstance(value, int) else 1


def _to_rgb(img: Image.Image) -> Image.Image:
    """RGB, with any transparency laid over black (the colour of the bars)."""
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    if img.mode.startswith("I"):  # 16-bit grey PNG: Pillow would clip it to white, so rescale
        img = img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    return img.convert("RGB")


def _needed(shown: Size, fit: str, size: Size) -> Size:
    """The smallest decoded size (as shown) the fit can use without enlarging."""
    scale_contain = min(size[0] / shown[0], size[1] / shown[1])
    scale_cover = max(size[0] / shown[0], size[1] / shown[1])
    scale = scale_cover if fit in ("cover", "smart") else scale_contain
    return max(1, round(shown[0] * scale)), max(1, round(shown[1] * scale))


def _scale_faces(faces: Sequence[FaceBox], size: Size) -> list[Box]:
    """Face boxes in the decoded image's pixels; boxes with nonsense dimensions are ignored,
    and so are boxes found on an image of another shape than this one."""
    boxes: list[Box] = []
    for x1, y1, x2, y2, ref_w, ref_h in faces:
        # Written so NaN fails too; an infinite edge would make the crop window NaN.
        if not (ref_w > 0 and ref_h > 0 and x2 > x1 and y2 > y1):
            continue
        # Faces found before a crop or rotation in Immich's editor point at the wrong place
        # on the edited preview; no box beats a box on a stranger's shoulder.
        if abs(ref_w * size[1] - ref_h * size[0]) > _SHAPE_TOLERANCE * ref_w * size[1]:
            continue
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            continue
        sx, sy = size[0] / ref_w, size[1] / ref_h
        boxes.append((x1 * sx, y1 * sy, x2 * sx, y2 * sy))
    return boxes


def _fit(img: Image.Image, fit: str, faces: Sequence[Box], size: Size) -> Image.Image:
    if fit == "cover":
        return img.resize(size, Image.Resampling.BICUBIC, box=_crop(img.size, size, []))
    if fit == "smart":
        return img.resize(size, Image.Resampling.BICUBIC, box=_crop(img.size, size, faces))
    inner = _needed(img.size, "contain", size)
    picture = img.resize(inner, Image.Resampling.BICUBIC)
    if inner == size:
        return picture
    canvas = _blurred(img, size) if fit == "blur" else Image.new("RGB", size)
    canvas.paste(picture, ((size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2))
    return canvas


def _blurred(img: Image.Image, size: Size) -> Image.Image:
    """A soft, darkened, enlarged copy of ``img`` filling ``size`` (blurred while tiny: fast)."""
    small = img.resize(_BLUR_SIZE, Image.Resampling.BOX, box=_crop(img.size, _BLUR_SIZE, []))
    small = small.filter(ImageFilter.GaussianBlur(_BLUR_RADIUS))
    small = small.point(lambda v: int(v * _BLUR_DIM))
    return small.resize(size, Image.Resampling.BILINEAR)


def _crop(src: Size, size: Size, faces: Sequence[Box]) -> Box:
    """The largest window of ``size``'s aspect in ``src``: centred, or moved to hold the faces.

    The window moves as little as it can from the centre. When all faces cannot fit, it centres
    on them.
    """
    aspect = size[0] / size[1]
    w = min(float(src[0]), src[1] * aspect)
    h = w / aspect
    x = (src[0] - w) / 2
    y = (src[1] - h) / 2
    if faces:
        x = _place(x, w, min(f[0] for f in faces), max(f[2] for f in faces), src[0])
        y = _place(y, h, min(f[1] for f in faces), max(f[3] for f in faces), src[1])
    return (x, y, x + w, y + h)


def _place(start: float, length: float, lo: float, hi: float, limit: float) -> float:
    """Shift a window [start, start+length) the least so it covers [lo, hi], within [0, limit]."""
    if hi - lo > length:
        start = (lo + hi - length) / 2
    elif lo < start:
        start = lo
    elif hi > start + length:
        start = hi - length
    return min(max(start, 0.0), limit - length)

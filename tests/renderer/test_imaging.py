"""What the frame shows of a photo: size, orientation, each fit, pairs, captions, hostile input.

Golden pictures live in tests/renderer/golden/ and are compared perceptually (mean difference
and PSNR), not byte for byte. Regenerate them after an intended change with
``TITANOFRAME_UPDATE_GOLDEN=1 .venv/bin/pytest tests/renderer/test_imaging.py`` and look at them.
"""

from __future__ import annotations

import io
import os
import random
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageOps

from common.caption import format_caption, validate_caption
from renderer import imaging
from renderer.caption import GLYPHS, fold
from renderer.imaging import FITS, ImageError, render, render_pair

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("TITANOFRAME_UPDATE_GOLDEN") == "1"
SIZE = (480, 320)


@dataclass(frozen=True)
class Profile:
    fit: str = "contain"
    caption: str | None = None
    format: str = "bmp16"
    pair_portraits: bool = False


def photo(width: int, height: int, seed: int = 3) -> Image.Image:
    """A deterministic, bright, photo-ish picture: gradient sky, hills, coloured shapes."""
    rnd = random.Random(seed)
    x = np.linspace(0, 1, width)[None, :]
    y = np.linspace(0, 1, height)[:, None]
    sky = np.stack([90 + 80 * x + 0 * y, 140 + 60 * y + 0 * x, 230 - 60 * y + 0 * x], -1)
    img = Image.fromarray(sky.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    draw.polygon(
        [(0, height * 0.6), (width, height * 0.45), (width, height), (0, height)], (80, 150, 60)
    )
    for _ in range(12):
        cx, cy, r = rnd.uniform(0, width), rnd.uniform(0, height), rnd.uniform(0.03, 0.12) * width
        draw.ellipse(
            (cx - r, cy - r, cx + r, cy + r), tuple(rnd.randrange(40, 256) for _ in range(3))
        )
    return img


def jpeg(img: Image.Image, orientation: int | None = None, quality: int = 80) -> bytes:
    out = io.BytesIO()
    extra: dict[str, Any] = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        extra["exif"] = exif.tobytes()
    img.save(out, "JPEG", quality=quality, **extra)
    return out.getvalue()


def encoded(img: Image.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (600, 400)) -> bytes:
    return jpeg(Image.new("RGB", size, colour), quality=95)


def px(img: Image.Image, x: int, y: int) -> tuple[int, int, int]:
    value = img.getpixel((x, y))
    assert isinstance(value, tuple)
    return (int(value[0]), int(value[1]), int(value[2]))


def near(a: tuple[int, int, int], b: tuple[int, int, int], tol: int = 24) -> bool:
    return all(abs(p - q) <= tol for p, q in zip(a, b, strict=True))


def luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB pixels."""
    c = rgb.astype(float) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    weights: np.ndarray = np.array([0.2126, 0.7152, 0.0722])
    return np.asarray(lin @ weights)


# --- size and decoding ---------------------------------------------------------------------


SHAPES = {
    "landscape": (1440, 1080),
    "portrait": (1080, 1440),
    "square": (800, 800),
    "tiny": (3, 2),
    "panorama": (3000, 600),
    "huge": (6000, 4000),
}


@pytest.fixture(scope="module")
def inputs() -> dict[str, bytes]:
    return {name: jpeg(photo(*size)) for name, size in SHAPES.items()}


@pytest.mark.parametrize("fit", FITS)
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_fit_makes_exactly_480x320_rgb(
    inputs: dict[str, bytes], shape: str, fit: str
) -> None:
    img = render(inputs[shape], "image/jpeg", Profile(fit=fit))
    assert (img.size, img.mode) == (SIZE, "RGB")


def test_large_jpegs_are_decoded_at_a_reduced_scale(inputs: dict[str, bytes]) -> None:
    # The 6000×4000 photo decodes at 1/8 (750×500): just enough for 480×320, never the full size.
    decoded = imaging._decode(inputs["huge"], "JPEG", "contain", SIZE)
    assert decoded.size == (750, 500)
    assert imaging._decode(inputs["landscape"], "JPEG", "cover", SIZE).size == (720, 540)


@pytest.mark.parametrize(
    ("orientation", "top", "bottom"),
    [(6, (255, 0, 0), (0, 0, 255)), (8, (0, 0, 255), (255, 0, 0)), (1, None, None)],
)
def test_exif_orientation_is_applied(
    orientation: int, top: tuple[int, int, int] | None, bottom: tuple[int, int, int] | None
) -> None:
    stored = Image.new("RGB", (600, 400), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 300, 400))  # left half red as stored
    img = render(jpeg(stored, orientation), "image/jpeg", Profile())
    if top is None or bottom is None:  # no rotation: landscape fills the frame, red on the left
        assert near(px(img, 40, 160), (255, 0, 0)) and near(px(img, 440, 160), (0, 0, 255))
        return
    # Shown as a portrait: black bars at the sides, red/blue at top/bottom.
    assert px(img, 10, 160) == (0, 0, 0) and px(img, 470, 160) == (0, 0, 0)
    assert near(px(img, 240, 30), top) and near(px(img, 240, 290), bottom)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows_exif_transpose(orientation: int) -> None:
    stored = photo(450, 300, seed=orientation)
    stored.paste((255, 0, 0), (0, 0, 90, 60))  # an asymmetric mark
    data = jpeg(stored, orientation, quality=95)
    upright = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    got = np.asarray(render(data, "image/jpeg", Profile(fit="cover"))).astype(int)
    want = np.asarray(render(jpeg(upright, quality=95), "image/jpeg", Profile(fit="cover")))
    assert np.abs(got - want).mean() < 2


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
def test_a_damaged_exif_block_only_loses_the_rotation() -> None:
    out = io.BytesIO()
    photo(600, 400).save(out, "JPEG", exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7f garbage")
    assert render(out.getvalue(), "image/jpeg", Profile()).size == SIZE


@pytest.mark.parametrize(("fmt", "mime"), [("WEBP", "image/webp"), ("PNG", "image/png")])
def test_webp_and_png_inputs(fmt: str, mime: str) -> None:
    data = encoded(photo(900, 600), fmt)
    for content_type in (mime, None, "application/octet-stream"):  # untyped: bytes are sniffed
        img = render(data, content_type, Profile(fit="cover"))
        assert img.size == SIZE
        assert near(px(img, 240, 10), px(photo(900, 600).resize(SIZE), 240, 10), 12)


def test_png_transparency_becomes_black() -> None:
    rgba = Image.new("RGBA", (300, 200), (255, 255, 255, 0))
    rgba.paste((255, 255, 255, 255), (0, 0, 150, 200))
    img = render(encoded(rgba, "PNG"), "image/png", Profile())
    assert px(img, 100, 160) == (255, 255, 255) and px(img, 380, 160) == (0, 0, 0)


def test_16_bit_grey_png_keeps_its_tones() -> None:
    grey = np.full((200, 300), 128 * 257, "<u2")  # mid grey in 16 bits
    data = encoded(Image.frombytes("I;16", (300, 200), grey.tobytes()), "PNG")
    assert near(px(render(data, "image/png", Profile()), 240, 160), (128, 128, 128), 2)


def test_content_type_parameters_and_case_are_ignored() -> None:
    img = render(solid((200, 30, 30)), "Image/JPEG; charset=binary", Profile())
    assert near(px(img, 240, 160), (200, 30, 30), 6)


def test_grayscale_and_cmyk_jpegs_render_as_rgb() -> None:
    grey = render(jpeg(photo(600, 400).convert("L")), "image/jpeg", Profile())
    cmyk = render(jpeg(photo(600, 400).convert("CMYK")), "image/jpeg", Profile())
    assert grey.mode == cmyk.mode == "RGB"
    assert near(
        px(cmyk, 20, 20), px(render(jpeg(photo(600, 400)), "image/jpeg", Profile()), 20, 20), 30
    )


# --- fits ------------------------------------------------------------------------------------


def test_contain_bars_are_black_and_the_picture_is_whole(inputs: dict[str, bytes]) -> None:
    img = np.asarray(render(inputs["portrait"], "image/jpeg", Profile(fit="contain")))
    inner = round(1080 * 320 / 1440)  # 240 pixels of picture, centred
    left = (480 - inner) // 2
    assert not img[:, : left - 1].any() and not img[:, left + inner + 1 :].any()
    assert img[:, left + 2 : left + inner - 2].min(axis=2).mean() > 40


@pytest.mark.parametrize("shape", ["portrait", "landscape", "panorama", "tiny"])
def test_cover_has_no_bars(inputs: dict[str, bytes], shape: str) -> None:
    img = np.asarray(render(inputs[shape], "image/jpeg", Profile(fit="cover")))
    edges = [img[:, 0], img[:, -1], img[0], img[-1]]
    assert all(edge.max(axis=1).min() > 30 for edge in edges)


def test_blur_fills_the_bars_with_the_picture(inputs: dict[str, bytes]) -> None:
    img = np.asarray(render(inputs["portrait"], "image/jpeg", Profile(fit="blur")))
    bars = np.concatenate([img[:, :110], img[:, -110:]], axis=1).astype(float)
    assert bars.max(axis=2).min() > 20  # no black left
    assert bars.std() > 5  # a picture, not a flat fill
    # ...and the photo itself is still there, sharp and whole, in the middle.
    contain = np.asarray(render(inputs["portrait"], "image/jpeg", Profile(fit="contain")))
    assert np.abs(img[:, 130:350].astype(int) - contain[:, 130:350]).mean() < 1


def face_scene() -> tuple[bytes, tuple[int, int, int, int]]:
    """A 2000×800 grey panorama with a magenta 'face' near its left edge."""
    img = Image.new("RGB", (2000, 800), (120, 120, 120))
    box = (40, 300, 160, 420)
    img.paste((255, 0, 255), box)
    return jpeg(img, quality=95), box


def magenta_share(img: Image.Image) -> float:
    a = np.asarray(img).astype(int)
    return float(((a[..., 0] > 200) & (a[..., 1] < 60) & (a[..., 2] > 200)).mean())


def test_smart_keeps_a_face_near_the_edge_that_cover_crops_away() -> None:
    data, (x1, y1, x2, y2) = face_scene()
    cover = render(data, "image/jpeg", Profile(fit="cover"))
    smart = render(data, "image/jpeg", Profile(fit="smart"), faces=[(x1, y1, x2, y2, 2000, 800)])
    assert magenta_share(cover) == 0
    assert magenta_share(smart) > 0.01
    # Boxes measured on a differently sized copy (Immich's imageWidth/Height) are scaled.
    half = render(data, "image/jpeg", Profile(fit="smart"), faces=[(20, 150, 80, 210, 1000, 400)])
    assert magenta_share(half) == pytest.approx(magenta_share(smart), abs=0.002)


def test_smart_moves_vertically_too() -> None:
    img = Image.new("RGB", (600, 1500), (120, 120, 120))
    img.paste((255, 0, 255), (250, 1350, 350, 1450))
    data = jpeg(img, quality=95)
    assert magenta_share(render(data, "image/jpeg", Profile(fit="cover"))) == 0
    faces = [(250, 1350, 350, 1450, 600, 1500)]
    assert magenta_share(render(data, "image/jpeg", Profile(fit="smart"), faces=faces)) > 0.01


def test_smart_without_usable_faces_is_a_centre_crop(inputs: dict[str, bytes]) -> None:
    data = inputs["panorama"]
    cover = np.asarray(render(data, "image/jpeg", Profile(fit="cover")))
    nan, inf = float("nan"), float("inf")
    unusable: list[list[imaging.FaceBox]] = [
        [],
        [(10, 10, 5, 5, 3000, 600)],
        [(0, 0, 10, 10, 0, 0)],
        # Immich's JSON may carry NaN or Infinity: such a box says nothing about where a face is.
        [(nan, 10, 20, 30, 3000, 600)],
        [(-inf, 10, inf, 30, 3000, 600)],
        [(10, 10, 20, 1e308 * 10, 3000, 600)],
    ]
    for faces in unusable:
        smart = np.asarray(render(data, "image/jpeg", Profile(fit="smart"), faces=faces))
        assert np.array_equal(smart, cover)
    # Faces at both ends cannot both fit: the crop centres on them, which is the middle here.
    both = [(0, 200, 100, 300, 3000, 600), (2900, 200, 3000, 300, 3000, 600)]
    smart = np.asarray(render(data, "image/jpeg", Profile(fit="smart"), faces=both))
    assert np.abs(smart.astype(int) - cover).mean() < 1


# --- pairs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fit", FITS)
def test_pair_puts_two_portraits_side_by_side(fit: str) -> None:
    red, blue = solid((220, 20, 20), (600, 800)), solid((20, 20, 220), (600, 800))
    img = render_pair(red, blue, ("image/jpeg", "image/jpeg"), Profile(fit=fit))
    assert img.size == SIZE and img.mode == "RGB"
    assert near(px(img, 120, 160), (220, 20, 20)) and near(px(img, 360, 160), (20, 20, 220))
    assert near(px(img, 235, 160), (220, 20, 20)) and near(px(img, 245, 160), (20, 20, 220))


def test_pair_halves_follow_the_fit_rules() -> None:
    wide = solid((220, 220, 20), (900, 600))  # not a portrait: contain leaves bars in its half
    img = np.asarray(render_pair(wide, wide, ("image/jpeg", None), Profile(fit="contain")))
    assert not img[:70].any() and not img[-70:].any()  # 240×160 picture, centred in 240×320
    assert img[100:220].min() > 0


def test_pair_with_a_bad_half_fails_as_a_whole() -> None:
    with pytest.raises(ImageError):
        render_pair(solid((1, 2, 3)), b"", ("image/jpeg", "image/jpeg"), Profile())


# --- captions --------------------------------------------------------------------------------


META: Mapping[str, Any] = {"taken": datetime(2023, 7, 14, 9, 30), "city": "Lyon"}


def test_caption_text_from_metadata() -> None:
    fmt = "{taken:%b %Y} · {city}"
    assert format_caption(fmt, META) == "Jul 2023 · Lyon"
    assert format_caption(fmt, {"taken": datetime(2023, 7, 14)}) == "Jul 2023"
    assert format_caption(fmt, {"city": "Lyon"}) == "Lyon"
    assert format_caption(fmt, {}) == ""
    assert (
        format_caption(
            "{city} · {country} · {taken:%Y}", {"city": "Lyon", "taken": "2020-01-02T03:04:05Z"}
        )
        == "Lyon · 2020"
    )
    assert format_caption("{people}", {"people": ["Ada", "Grace"]}) == "Ada, Grace"
    assert format_caption("{taken:%Y}", {"taken": "not a date"}) == ""


@pytest.mark.parametrize(
    ("fmt", "words"),
    [
        ("{cty}", "unknown"),
        ("{}", "unknown"),
        ("{taken.year}", "unknown"),
        ("{city!r}", "conversions"),
        ("{taken:%b", "not a valid format"),
        ("{city:d}", "invalid"),
    ],
)
def test_bad_caption_formats_are_caught_early_and_at_render_time(fmt: str, words: str) -> None:
    problem = validate_caption(fmt)
    assert problem is not None and words in problem
    with pytest.raises(ImageError, match=words):
        render(solid((10, 10, 10)), "image/jpeg", Profile(caption=fmt), meta=META)


def test_good_caption_formats_validate() -> None:
    assert validate_caption("{taken:%b %Y} · {city}") is None
    assert validate_caption("{people} in {city}, {country}") is None


def caption_contrast(background: tuple[int, int, int]) -> float:
    """WCAG contrast of the caption's letters against the band right behind them."""
    data = solid(background)
    plain = np.asarray(render(data, "image/jpeg", Profile()))
    captioned = np.asarray(render(data, "image/jpeg", Profile(caption="{city}"), meta=META))
    changed = np.argwhere((plain != captioned).any(axis=2))
    assert len(changed) > 100, "no caption drawn"
    (top, left), (bottom, right) = changed.min(axis=0), changed.max(axis=0)
    lum = luminance(captioned[top : bottom + 1, left : right + 1])
    values, counts = np.unique(lum.round(3), return_counts=True)
    band = values[counts.argmax()]  # the commonest shade in the captioned strip
    letters = np.argwhere(np.abs(lum - band) > 0.01)  # letters, outline and their edges
    (y0, x0), (y1, x1) = letters.min(axis=0), letters.max(axis=0)
    text = np.percentile(lum[y0 : y1 + 1, x0 : x1 + 1], 99)
    return float((max(text, band) + 0.05) / (min(text, band) + 0.05))


@pytest.mark.parametrize(
    "background", [(255, 255, 255), (0, 0, 0), (128, 128, 128), (250, 230, 40)]
)
def test_caption_is_legible_on_any_background(background: tuple[int, int, int]) -> None:
    assert caption_contrast(background) >= 4.5


def test_caption_with_no_data_draws_nothing() -> None:
    data = solid((200, 200, 200))
    plain = render(data, "image/jpeg", Profile())
    empty = render(data, "image/jpeg", Profile(caption="{city} · {taken:%Y}"), meta={})
    assert np.array_equal(np.asarray(plain), np.asarray(empty))


def test_caption_folds_letters_the_font_lacks() -> None:
    data = solid((90, 90, 90))
    accented = render(data, "image/jpeg", Profile(caption="{city}"), meta={"city": "Zürich"})
    plain = render(data, "image/jpeg", Profile(caption="{city}"), meta={"city": "Zurich"})
    assert np.array_equal(np.asarray(accented), np.asarray(plain))
    assert fold("Kraków — Straße 東京") == "Krakow - Strasse"


def test_caption_glyph_set_matches_the_bundled_font() -> None:
    from PIL import ImageFont, features

    assert features.check("freetype2"), "captions need Pillow built with FreeType"
    font = ImageFont.load_default(size=18)
    missing = font.getmask("\uffff")
    tofu = (missing.size, bytes(Image.Image()._new(missing).tobytes()))
    for ch in GLYPHS - {" "}:
        mask = font.getmask(ch)
        assert (mask.size, bytes(Image.Image()._new(mask).tobytes())) != tofu, repr(ch)


def test_long_captions_are_cut_to_the_width() -> None:
    meta = {"description": "a very long description " * 10}
    img = render_pair(
        solid((250, 250, 250), (600, 800)),
        solid((250, 250, 250), (600, 800)),
        ("image/jpeg", "image/jpeg"),
        Profile(caption="{description}"),
        metas=(meta, None),
    )
    a = np.asarray(img)
    assert (a[-30:, :240] < 200).any()  # left half captioned...
    assert (a[-30:, 241:] > 240).all()  # ...the right half (no metadata) and nothing spilled over


def test_a_very_long_caption_is_cut_in_a_few_measurements(monkeypatch: pytest.MonkeyPatch) -> None:
    # A description of a few pages (Immich sets no small limit) must not cost a measurement per
    # character: that made one render take minutes.
    from PIL import ImageFont

    from renderer import caption

    measured: list[int] = []
    getlength = ImageFont.FreeTypeFont.getlength

    def counting(self: ImageFont.FreeTypeFont, text: str, *args: Any, **kwargs: Any) -> float:
        measured.append(len(text))
        return getlength(self, text, *args, **kwargs)

    def naive(text: str, width: int) -> str:  # one measurement per character dropped
        if getlength(font, text) <= width:
            return text
        while text and getlength(font, text + "…") > width:
            text = text[:-1]
        return text.rstrip(" ·,-") + "…"

    font = caption._font(caption.FONT_SIZE)
    words = "the long walk along the river, " * 400
    monkeypatch.setattr(ImageFont.FreeTypeFont, "getlength", counting)
    cut = caption._fit_width(words, font, 468)
    assert len(measured) <= 20 and max(measured) <= 470
    monkeypatch.undo()
    assert cut.endswith("…") and cut == naive(words[:500], 468)
    for text in ("Lyon", "x" * 200, "Ada, Grace, Linus · " * 5, "a" * 228, ""):
        for width in (228, 468, 0):
            assert caption._fit_width(text, font, width) == naive(text, width), (text, width)


# --- hostile input ---------------------------------------------------------------------------


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims another size (a decompression bomb's calling card)."""
    data = bytearray(solid((1, 2, 3), (64, 64)))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def png_claiming(width: int, height: int) -> bytes:
    data = bytearray(encoded(Image.new("RGB", (64, 64)), "PNG"))
    struct.pack_into(">II", data, 16, width, height)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))
    return bytes(data)


VALID = jpeg(photo(300, 200))
HOSTILE = {
    "zero bytes": (b"", "image/jpeg"),
    "truncated JPEG": (VALID[: len(VALID) // 2], "image/jpeg"),
    "HTML as JPEG": (b"<!doctype html><html><body>502 Bad Gateway</body></html>", "image/jpeg"),
    "HTML as HTML": (b"<html></html>", "text/html"),
    "HTML untyped": (b"<html></html>", None),
    "PNG labelled JPEG": (encoded(photo(30, 20), "PNG"), "image/jpeg"),
    "JPEG bomb": (jpeg_claiming(20000, 20000), "image/jpeg"),
    "PNG bomb": (png_claiming(20000, 20000), "image/png"),
    "GIF": (encoded(photo(30, 20), "GIF"), "image/gif"),
    "GIF untyped": (encoded(photo(30, 20), "GIF"), None),
    "HEIC type": (VALID, "image/heic"),
    "garbage": (bytes(range(256)) * 4, "image/webp"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_is_an_image_error(name: str) -> None:
    data, content_type = HOSTILE[name]
    limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(ImageError) as caught:
        render(data, content_type, Profile(fit="blur"))
    assert caught.value.reason
    assert limit == Image.MAX_IMAGE_PIXELS  # the guard is read, never changed
    if "bomb" in name:
        assert "too large" in caught.value.reason


def test_unknown_fit_is_an_image_error() -> None:
    with pytest.raises(ImageError, match="zoom"):
        render(VALID, "image/jpeg", Profile(fit="zoom"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.binary(max_size=400),
    content_type=st.sampled_from(["image/jpeg", "image/webp", "image/png", None]),
)
def test_random_bytes_never_escape_as_anything_but_image_error(
    data: bytes, content_type: str | None
) -> None:
    with pytest.raises(ImageError):
        render(data, content_type, Profile())


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(2, len(VALID) - 1), st.integers(0, 255)), min_size=1, max_size=8)
)
def test_damaged_jpegs_render_or_fail_cleanly(damage: list[tuple[int, int]]) -> None:
    data = bytearray(VALID)
    for offset, value in damage:
        data[offset] = value
    try:
        img = render(bytes(data), "image/jpeg", Profile(fit="smart"))
    except ImageError:
        return
    assert img.size == SIZE


# --- golden pictures -------------------------------------------------------------------------


def golden_cases() -> dict[str, Image.Image]:
    landscape = jpeg(photo(1440, 1080, seed=11))
    portrait = jpeg(photo(1080, 1440, seed=12))
    cases = {f"{fit}": render(portrait, "image/jpeg", Profile(fit=fit)) for fit in FITS}
    cases["smart"] = render(
        landscape, "image/jpeg", Profile(fit="smart"), faces=[(1300, 100, 1420, 260, 1440, 1080)]
    )
    cases["pair_blur_caption"] = render_pair(
        portrait,
        jpeg(photo(900, 1350, seed=13)),
        ("image/jpeg", "image/jpeg"),
        Profile(fit="blur", caption="{taken:%b %Y} · {city}"),
        metas=(META, {"city": "Annecy"}),
    )
    cases["caption"] = render(
        landscape, "image/jpeg", Profile(caption="{taken:%d %B %Y} · {city}"), meta=META
    )
    return cases


def test_golden_pictures() -> None:
    GOLDEN.mkdir(exist_ok=True)
    problems = []
    for name, img in golden_cases().items():
        path = GOLDEN / f"{name}.png"
        if UPDATE_GOLDEN:
            img.save(path, optimize=True)
            continue
        assert path.exists(), f"{path.name} missing: run with TITANOFRAME_UPDATE_GOLDEN=1"
        want = np.asarray(Image.open(path).convert("RGB")).astype(float)
        got = np.asarray(img).astype(float)
        mad = np.abs(want - got).mean()
        psnr = 10 * np.log10(255**2 / max(((want - got) ** 2).mean(), 1e-9))
        if mad > 1.5 or psnr < 35:
            problems.append(f"{name}: mean abs diff {mad:.2f}, PSNR {psnr:.1f} dB")
    assert not problems, problems

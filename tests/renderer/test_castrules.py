"""The pure rules of casting (renderer/castrules.py): tokens, seconds, image type, the rate per
frame with `now` passed in, the signed URL and the announcement's size."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from common import signing
from common.config import parse_config, redacted, redacted_line, secret_values
from renderer import castrules
from renderer.castrules import CastRefused, RateLimit


def _refused(call: object, *args: object) -> tuple[int, str]:
    with pytest.raises(CastRefused) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.status, caught.value.code


def test_the_frame_token_wins_over_the_renderer_token() -> None:
    doc = {
        "renderer": {"cast_token": "all"},
        "frames": {
            "kitchen": {"sources": [{"folder": "."}], "cast_token": "mine"},
            "hall": {"sources": [{"folder": "."}]},
        },
    }
    config = parse_config(doc, {}, Path("."))
    kitchen, hall = config.frames
    assert castrules.token_for(config, kitchen) == "mine"
    assert castrules.token_for(config, hall) == "all"
    castrules.check_token("mine", "mine")
    assert _refused(castrules.check_token, "mine", "all") == (401, "unauthorized")
    assert _refused(castrules.check_token, "mine", None) == (401, "unauthorized")
    assert _refused(castrules.check_token, None, "mine") == (403, "cast_disabled")


def test_seconds() -> None:
    assert castrules.seconds(None) == castrules.DEFAULT_SECONDS
    assert castrules.seconds("5") == 5 and castrules.seconds("600") == 600
    for bad in ("4", "601", "", "-1", "1.5", "30s", "٣٠", "9" * 40):
        assert _refused(castrules.seconds, bad) == (400, "bad_seconds"), bad


def test_image_format_from_the_bytes_and_the_declared_type() -> None:
    jpeg, png = b"\xff\xd8\xff\xe0rest", b"\x89PNG\r\n\x1a\nrest"
    assert castrules.image_format(jpeg, "image/jpeg") == "JPEG"
    assert castrules.image_format(png, "image/png; charset=binary") == "PNG"
    assert castrules.image_format(png, None) == "PNG"
    assert castrules.image_format(jpeg, "application/octet-stream") == "JPEG"
    assert _refused(castrules.image_format, png, "image/jpeg") == (415, "unsupported_type")
    assert _refused(castrules.image_format, b"GIF89a", "image/gif") == (415, "unsupported_type")
    assert _refused(castrules.image_format, b"GIF89a", None) == (415, "unsupported_type")
    assert _refused(castrules.image_format, b"", "image/jpeg") == (400, "empty_body")


def test_the_rate_is_per_frame_over_a_sliding_minute() -> None:
    limit = RateLimit(2)
    limit.take("kitchen", 100.0)
    limit.take("kitchen", 130.0)
    with pytest.raises(CastRefused) as caught:
        limit.take("kitchen", 150.0)
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "10"
    limit.take("hall", 150.0)  # another frame's budget
    limit.take("kitchen", 160.0)  # the first one left the window
    assert _refused(limit.take, "kitchen", 189.0) == (429, "rate_limited")


def test_the_cast_url_is_signed_for_that_cast_only() -> None:
    exp = int(time.time()) + 60
    url = castrules.cast_url("http://r:8080/", "key", "kitchen", "ab12", exp)
    assert url.startswith("http://r:8080/v1/frames/kitchen/casts/ab12.bmp?exp=")
    sig = url.rsplit("sig=", 1)[1]
    now = time.time()
    assert signing.verify_signature("key", "kitchen", "cast/ab12", str(exp), sig, now) is None
    assert signing.verify_signature("key", "kitchen", "ab12", str(exp), sig, now) is not None
    assert castrules.cast_url("http://r", None, "kitchen", "ab12", exp).endswith("ab12.bmp")


def test_the_announcement_stays_under_8_kb() -> None:
    doc = json.loads(castrules.announcement("http://r/x", 30, "ab12", 154678, "bmp8"))
    assert doc == {"v": 1, "id": "ab12", "url": "http://r/x", "seconds": 30, "bytes": 154678,
                   "format": "bmp8"}  # fmt: skip
    with pytest.raises(ValueError, match="announcement is"):
        castrules.announcement("http://r/" + "x" * 9000, 30, "ab12", 1, "bmp8")


def test_cast_tokens_are_redacted_by_key_and_filtered_from_logs() -> None:
    doc = {
        "renderer": {"cast_token": "${CAST_TOKEN}"},
        "frames": {"kitchen": {"sources": [{"folder": "."}], "cast_token": "${KITCHEN_CAST}"}},
    }
    env = {"CAST_TOKEN": "renderer-token-1f2e", "KITCHEN_CAST": "kitchen-token-3c4d"}
    config = parse_config(doc, env, Path("."))
    assert config.renderer.cast_token == "renderer-token-1f2e"
    shown = redacted(config)
    assert shown["renderer"]["cast_token"] == "***"
    assert shown["frames"]["kitchen"]["cast_token"] == "***"
    line = redacted_line(config)
    assert "renderer-token-1f2e" not in line and "kitchen-token-3c4d" not in line
    assert {"renderer-token-1f2e", "kitchen-token-3c4d"} <= set(secret_values(config))

"""Signed JPEG URLs and frame-secret checks (common.signing), against independent HMACs."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs, urlsplit

from common.signing import (
    bearer_token,
    secret_matches,
    sign,
    signed_jpeg_url,
    signed_query,
    verify_signature,
)

KEY = "k3y-for-tests"
PID = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


def test_signature_is_hmac_sha256_of_frame_picture_and_expiry() -> None:
    expected = hmac.new(KEY.encode(), f"kitchen/{PID}/1763884800".encode(), hashlib.sha256)
    assert sign(KEY, "kitchen", PID, 1763884800) == expected.hexdigest()
    assert sign(KEY, "kitchen", PID, "1763884800") == expected.hexdigest()


def test_signed_url_shape() -> None:
    url = signed_jpeg_url("http://192.168.1.10:8080/", KEY, "kitchen", PID, 1763884800)
    parts = urlsplit(url)
    assert parts.path == f"/v1/frames/kitchen/pictures/{PID}.jpg"
    query = parse_qs(parts.query)
    assert query == {"exp": ["1763884800"], "sig": [sign(KEY, "kitchen", PID, 1763884800)]}
    assert signed_query(KEY, "kitchen", PID, 1) == f"exp=1&sig={sign(KEY, 'kitchen', PID, 1)}"


def test_verify() -> None:
    sig = sign(KEY, "kitchen", PID, 2000)
    assert verify_signature(KEY, "kitchen", PID, "2000", sig, now=1999.5) is None
    assert verify_signature(KEY, "kitchen", PID, "2000", sig.upper(), now=1999) is None
    assert verify_signature(KEY, "kitchen", PID, "2000", sig, now=2000.5) == "signed URL expired"
    bad = {
        "wrong key": verify_signature("other", "kitchen", PID, "2000", sig, now=0),
        "other frame": verify_signature(KEY, "hall", PID, "2000", sig, now=0),
        "other picture": verify_signature(KEY, "kitchen", PID[::-1], "2000", sig, now=0),
        "other expiry": verify_signature(KEY, "kitchen", PID, "2001", sig, now=0),
        "leading zero": verify_signature(KEY, "kitchen", PID, "02000", sig, now=0),
        "truncated": verify_signature(KEY, "kitchen", PID, "2000", sig[:-1], now=0),
        "unicode": verify_signature(KEY, "kitchen", PID, "2000", "é" * 64, now=0),
        "surrogate": verify_signature(KEY, "kitchen", PID, "2000", "\udcff" * 64, now=0),
    }
    assert all(reason == "bad signature" for reason in bad.values()), bad
    for exp in ("", "-1", "1e9", "２０００", "9" * 13, " 2000"):
        assert verify_signature(KEY, "kitchen", PID, exp, sig, now=0) == "exp is not a unix time"


def test_secret_and_bearer() -> None:
    assert secret_matches("s3cret", "s3cret")
    assert not secret_matches("s3cret", "s3cre")
    assert not secret_matches("s3cret", None)
    assert not secret_matches("s3cret", "s3cret\udcff")
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer   abc  ") == "abc"
    for header in (None, "", "Bearer", "Bearer   ", "Basic abc", "abc"):
        assert bearer_token(header) is None

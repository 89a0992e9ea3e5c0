"""Signed picture URLs and frame-secret checks. Pure: values in, values out, `now` passed in.

A signed URL lets Home Assistant show a frame's picture as JPEG without any frame secret on MQTT:
`?exp=<unix time>&sig=<hex HMAC-SHA256 over "<frame>/<picture id>/<exp>">` with the key only the
bridge and the renderer hold (config `renderer.url_key`). Every comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

# Longest `exp` accepted: ten digits reach the year 2286; anything longer is not a time.
_MAX_EXP_DIGITS = 12


def sign(key: str, frame: str, picture_id: str, exp: int | str) -> str:
    """Hex HMAC-SHA256 of `"<frame>/<picture id>/<exp>"` under `key`, `exp` as the URL has it."""
    message = f"{frame}/{picture_id}/{exp}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signed_query(key: str, frame: str, picture_id: str, exp: int) -> str:
    """The query string (`exp=…&sig=…`, no leading `?`) that authorises one JPEG until `exp`."""
    return urlencode({"exp": str(exp), "sig": sign(key, frame, picture_id, exp)})


def signed_jpeg_url(public_url: str, key: str, frame: str, picture_id: str, exp: int) -> str:
    """Full signed JPEG URL of a picture, as the bridge publishes it on the `picture` topic."""
    base = public_url.rstrip("/")
    query = signed_query(key, frame, picture_id, exp)
    return f"{base}/v1/frames/{frame}/pictures/{picture_id}.jpg?{query}"


def verify_signature(
    key: str, frame: str, picture_id: str, exp: str, sig: str, now: float
) -> str | None:
    """None when `exp`/`sig` authorise the picture at `now`, else a short reason why not."""
    if not exp.isascii() or not exp.isdigit() or len(exp) > _MAX_EXP_DIGITS:
        return "exp is not a unix time"
    if int(exp) < now:
        return "signed URL expired"
    expected = sign(key, frame, picture_id, exp)
    # compare_digest on bytes: a non-ASCII `sig` must fail, not raise.
    if not hmac.compare_digest(expected.encode(), sig.lower().encode("utf-8", "replace")):
        return "bad signature"
    return None


def secret_matches(expected: str, presented: str | None) -> bool:
    """Constant-time check of a presented frame secret; None (nothing presented) never matches."""
    if presented is None:
        return False
    return hmac.compare_digest(expected.encode(), presented.encode("utf-8", "replace"))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None if absent or another scheme."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()

"""Hostile input against the running renderer: paths, headers, query strings, and image bodies
served by the fake Immich. Whatever arrives, the answer is a deliberate 4xx (or 502 for a bad
upstream body), never a 500, and the service keeps answering.
"""

from __future__ import annotations

import http.client
import io
import json
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.kit import rendererkit
from tests.kit.broker import USERS
from tests.kit.fakes.immich import FakeImmich
from tests.kit.rendererkit import RendererRig, StartRig

# The rig's fixtures, shared with the HTTP tests.
fake = rendererkit.fake
start_rig = rendererkit.start_rig

VERSION = "5eed0001"


def _jpeg(width: int = 64, height: int = 48) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(out, "JPEG")
    return out.getvalue()


def _huge_jpeg() -> bytes:
    """A small JPEG whose frame header claims 20000×20000 pixels."""
    data = bytearray(_jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (20000).to_bytes(2, "big") * 2
    return bytes(data)


def _corrupt_jpeg() -> bytes:
    data = bytearray(_jpeg(640, 480))
    for i in range(len(data) // 3, len(data) - 2, 7):
        data[i] = 0xFF
    return bytes(data)


HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "corrupt": (_corrupt_jpeg(), "image/jpeg"),
    "empty": (b"", "image/jpeg"),
    "huge": (_huge_jpeg(), "image/jpeg"),
    "html": (b"<!doctype html><html><body>502 Bad Gateway</body></html>", "text/html"),
    "html_as_jpeg": (b"<html><body>login</body></html>", "image/jpeg"),
    "untyped_garbage": (b"\x00" * 1000, "application/octet-stream"),
}


@pytest.fixture
def hostile(start_rig: StartRig, fake: FakeImmich) -> Iterator[tuple[RendererRig, dict[str, str]]]:
    """A rig whose manifests hold good pictures, pairs, and assets with hostile bodies."""
    rig = start_rig(upstream_timeout=5)
    good = [fake.add_asset(favorite=True, width=640, height=480) for _ in range(2)]
    named = {"good": good[0], "pair": f"{good[0]}+{good[1]}"}
    for kind, body in HOSTILE_BODIES.items():
        asset = fake.add_asset(favorite=True, width=640, height=480)
        fake.set_preview(asset, *body)
        named[kind] = asset
    named["pair_half_bad"] = f"{good[1]}+{named['corrupt']}"
    pictures = dict.fromkeys(named.values(), VERSION)
    for frame in ("kitchen", "open"):
        rig.publish_manifest(frame, pictures, "bmp16")
    yield rig, named


def request(
    port: int, path: str, headers: list[tuple[str, bytes]]
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers:
            conn.putheader(name, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def check_answer(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status != 500 and (status < 500 or status == 502), (status, body[:300])
    if status == 200:
        assert int(headers["content-length"]) == len(body)
    if status >= 400 and headers.get("content-type", "").startswith("application/json"):
        doc = json.loads(body)
        assert doc["error"] and doc["detail"]


def test_hostile_upstream_bodies_are_502_with_a_reason(
    hostile: tuple[RendererRig, dict[str, str]],
) -> None:
    rig, named = hostile
    for kind in (*HOSTILE_BODIES, "pair_half_bad"):
        resp = rig.get("kitchen", f"{named[kind]}.bmp")
        assert resp.status_code == 502, kind
        assert resp.json()["error"] == "bad_image", kind
    for kind in ("good", "pair"):
        assert rig.get("kitchen", f"{named[kind]}.bmp").status_code == 200
    assert rig.metric("render_errors_total") >= len(HOSTILE_BODIES)
    assert rig.get("kitchen", f"{named['good']}.jpg").status_code == 200  # still serving


_TEXT = st.text(max_size=60)
_SAFE_PATH = "/%?&=+;:@!$'()*,~"
_SAFE_NAME = "%+;:@!$'()*,~="


def _strategies(named: dict[str, str]) -> st.SearchStrategy[tuple[str, list[tuple[str, bytes]]]]:
    ids = list(named.values())
    # Well-formed requests come up often enough to reach the renderer and the fake Immich.
    frames = st.sampled_from(["open"] * 4 + ["kitchen"] * 2 + ["attic", "KITCHEN", "..", ""])
    well_formed = st.builds(
        lambda i, e: i + e, st.sampled_from(ids), st.sampled_from([".bmp", ".jpg", ".bmp", ""])
    )
    names = st.one_of(
        well_formed,
        well_formed,
        well_formed,
        st.sampled_from(
            ["..%2f..%2fetc%2fpasswd.bmp", "%00.bmp", "a+b.bmp", ids[0].upper() + ".bmp"]
        ),
        _TEXT.map(lambda t: quote(t, safe=_SAFE_NAME)),
    )
    pictures = st.builds(lambda f, n: f"/v1/frames/{f}/pictures/{n}", frames, names)
    paths = st.one_of(
        pictures,
        pictures,
        pictures,
        _TEXT.map(lambda t: "/" + quote(t, safe=_SAFE_PATH)),
        st.sampled_from(
            [
                "/healthz",
                "/metrics",
                "/",
                "//",
                "/v1/frames/kitchen/pictures/",
                "/v1/frames/kitchen/pictures/" + "a" * 9000 + ".bmp",
            ]
        ),
    )
    queries = st.one_of(
        st.just(""),
        st.dictionaries(st.sampled_from(["token", "exp", "sig", "x"]), _TEXT, max_size=3).map(
            urlencode
        ),
        st.sampled_from(["token=" + USERS["kitchen"], "exp=99999999999&sig=00", "%zz&&==&exp="]),
        _TEXT.map(lambda t: quote(t, safe="%&=+")),
    )
    plausible = st.sampled_from(
        [
            f"Bearer {USERS['kitchen']}".encode(),
            f'"{VERSION}"'.encode(),
            b"bytes=0-99",
            b"image/bmp",
        ]
    )
    values = st.one_of(
        plausible,
        plausible,
        _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=60),
        st.sampled_from(
            [
                f"Bearer {USERS['kitchen']}".encode(),
                f'"{VERSION}"'.encode(),
                f'W/"{VERSION}", "x"'.encode(),
                "Bearer kitchén".encode(),
                b"Bearer",
                b"*",
                b"x" * 10_000,
            ]
        ),
    ).map(lambda v: v.replace(b"\r", b"").replace(b"\n", b""))
    header_names = st.sampled_from(["Authorization", "If-None-Match", "Range", "X-Any", "Accept"])
    headers = st.lists(st.tuples(header_names, values), max_size=3)
    return st.builds(lambda p, q, h: (p + ("?" + q if q else ""), h), paths, queries, headers)


def test_fuzzed_requests_never_get_a_500(hostile: tuple[RendererRig, dict[str, str]]) -> None:
    rig, named = hostile
    statuses: dict[int, int] = {}

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(_strategies(named))
    def run(case: tuple[str, list[tuple[str, bytes]]]) -> None:
        path, headers = case
        status, resp_headers, body = request(rig.port, path, headers)
        statuses[status] = statuses.get(status, 0) + 1
        check_answer(status, resp_headers, body)

    run()
    assert sum(statuses.values()) >= 150
    assert statuses.get(500, 0) == 0
    assert rig.metric('requests_total{route="picture",status="500"}') == 0
    # Still serving after all of it.
    assert rig.get("kitchen", f"{named['good']}.bmp").status_code == 200

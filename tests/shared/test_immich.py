"""The Immich client against a real fake Immich on loopback: paging, errors, connections, images."""

from __future__ import annotations

import io
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from common.immich import (
    ImmichAuthError,
    ImmichClient,
    ImmichNotFound,
    ImmichResponseError,
    ImmichUnreachable,
)
from tests.kit.fakes.immich import FakeImmich

NEEDED = ["asset.read", "asset.view", "album.read", "person.read", "memory.read", "tag.read"]


@pytest.fixture
def fake() -> Iterator[FakeImmich]:
    with FakeImmich() as server:
        yield server


@pytest.fixture
def client(fake: FakeImmich) -> Iterator[ImmichClient]:
    with ImmichClient(fake.url, fake.api_key, timeout=5) as c:
        yield c


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- paging ----------------------------------------------------------------------------------


def test_walking_2500_favourites_at_page_size_1000_takes_three_requests(
    fake: FakeImmich, client: ImmichClient
) -> None:
    fake.add_favorites(2500)
    fake.add_assets(40)  # not favourites

    ids = [a["id"] for a in client.search_assets({"isFavorite": True, "type": "IMAGE"})]

    assert len(ids) == len(set(ids)) == 2500
    assert fake.count("/search/metadata") == client.requests_made == 3
    pages = [(r.body["page"], r.body["size"]) for r in fake.requests]
    assert pages == [(1, 1000), (2, 1000), (3, 1000)]
    assert client.bytes_received == fake.bytes_sent


def test_next_page_travels_as_a_string_and_comes_back_as_a_number(
    fake: FakeImmich, client: ImmichClient
) -> None:
    fake.add_favorites(3)
    raw_request = urllib.request.Request(
        f"{fake.url}/api/search/metadata",
        data=json.dumps({"isFavorite": True, "size": 2}).encode(),
        headers={"x-api-key": fake.api_key, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(raw_request, timeout=5) as reply:
        raw = json.load(reply)
    assert raw["assets"]["nextPage"] == "2"

    first, following = client.search_page({"isFavorite": True}, page=1, size=2)
    last, after_last = client.search_page({"isFavorite": True}, page=2, size=2)

    assert (len(first), following) == (2, 2)
    assert (len(last), after_last) == (1, None)


def test_people_are_walked_page_by_page_without_hidden_ones(
    fake: FakeImmich, client: ImmichClient
) -> None:
    for i in range(1203):
        fake.add_person(f"Person {i:04d}", hidden=i % 100 == 0)

    people = client.people()

    assert len(people) == 1203 - 13
    assert not any(p["isHidden"] for p in people)
    assert fake.count("/people") == 2


# -- errors ----------------------------------------------------------------------------------


def test_a_server_error_is_a_response_error_and_the_next_call_works(
    fake: FakeImmich, client: ImmichClient
) -> None:
    fake.fail_next(1, status=503)
    with pytest.raises(ImmichResponseError) as err:
        client.albums()
    assert err.value.status == 503
    assert client.albums() == []


def test_a_slow_server_is_unreachable_after_the_client_timeout(fake: FakeImmich) -> None:
    fake.delay(3.0, n=1, path="/albums")
    with ImmichClient(fake.url, fake.api_key, timeout=0.3) as impatient:
        with pytest.raises(ImmichUnreachable):
            impatient.albums()
        assert impatient.tags() == []  # only /albums was slow


def test_garbage_json_is_a_response_error(fake: FakeImmich, client: ImmichClient) -> None:
    fake.garbage_next(1)
    with pytest.raises(ImmichResponseError, match="invalid JSON"):
        client.search_page({"type": "IMAGE"})


@pytest.mark.parametrize("call", ["search", "thumbnail"])
def test_a_truncated_body_is_a_response_error(
    fake: FakeImmich, client: ImmichClient, call: str
) -> None:
    asset = fake.add_asset(favorite=True)
    fake.truncate_next(1)
    with pytest.raises(ImmichResponseError, match="truncated"):
        if call == "search":
            client.search_page({"isFavorite": True})
        else:
            client.thumbnail(asset)
    assert client.thumbnail(asset)[1] == "image/jpeg"  # a fresh connection works


def test_a_wrong_key_is_an_auth_error_that_never_shows_the_key(fake: FakeImmich) -> None:
    secret = "not-the-key-3f9a7c"
    with ImmichClient(fake.url, secret) as wrong:
        with pytest.raises(ImmichAuthError) as err:
            wrong.permissions()
        assert wrong.ping()  # ping needs no key, so it cannot validate one
    assert err.value.status == 401
    assert err.value.reason == "Invalid API key"
    assert secret not in str(err.value)


def test_a_missing_scope_is_a_403_naming_the_scope(fake: FakeImmich) -> None:
    asset = fake.add_asset()
    key = fake.add_key(["asset.read"])
    with ImmichClient(fake.url, key) as limited:
        assert len(limited.search_page({})[0]) == 1
        with pytest.raises(ImmichAuthError) as err:
            limited.thumbnail(asset)
    assert err.value.status == 403
    assert err.value.reason == "Missing required permission: asset.view"


def test_an_out_of_range_page_size_says_what_immich_said(client: ImmichClient) -> None:
    with pytest.raises(ImmichResponseError) as err:
        client.search_page({}, size=1001)
    assert err.value.status == 400
    assert "Validation failed: size: Too big: expected number to be <=1000" in err.value.reason


def test_unknown_ids_are_not_found(fake: FakeImmich, client: ImmichClient) -> None:
    nobody = "9b2f6c1e-3f4a-4d5b-8c6d-7e8f9a0b1c2d"
    with pytest.raises(ImmichNotFound):
        client.thumbnail(nobody)
    with pytest.raises(ImmichNotFound):
        client.faces(nobody)


def test_a_closed_port_is_unreachable_and_the_key_stays_out_of_the_message() -> None:
    secret = "secret-key-that-must-not-leak"
    with ImmichClient(f"http://127.0.0.1:{_closed_port()}", secret, timeout=2) as c:
        assert c.ping() is False
        with pytest.raises(ImmichUnreachable) as err:
            c.version()
    assert secret not in str(err.value)


# -- connection ------------------------------------------------------------------------------


def test_calls_share_one_kept_alive_connection_errors_included(
    fake: FakeImmich, client: ImmichClient
) -> None:
    asset = fake.add_asset(favorite=True)
    nobody = "9b2f6c1e-3f4a-4d5b-8c6d-7e8f9a0b1c2d"

    for _ in range(3):
        assert client.albums() == []
        assert client.thumbnail(asset)[1] == "image/jpeg"
        assert len(client.search_page({"isFavorite": True})[0]) == 1
        with pytest.raises(ImmichNotFound):
            client.thumbnail(nobody)  # an error answer read to its end keeps the connection

    assert client.requests_made == fake.count() == 12
    assert fake.connections_accepted == 1
    assert client.bytes_received == fake.bytes_sent


def test_a_body_not_read_to_its_end_costs_the_connection(
    fake: FakeImmich, client: ImmichClient
) -> None:
    asset = fake.add_asset()
    with pytest.raises(ImmichResponseError, match="limit"):
        client.thumbnail(asset, max_bytes=1000)  # refused on its Content-Length, left unread

    assert client.thumbnail(asset)[1] == "image/jpeg"
    assert client.albums() == []
    assert fake.connections_accepted == 2


def test_a_connection_the_server_closed_while_idle_is_opened_again(
    fake: FakeImmich, client: ImmichClient
) -> None:
    assert client.albums() == []
    fake.hang_up()  # the server's keep-alive timeout, without the wait

    assert client.tags() == []

    assert client.requests_made == 2
    assert fake.count("/tags") == 1
    assert fake.connections_accepted == 2


def test_a_connection_closed_as_the_request_arrives_is_tried_anew_once(
    fake: FakeImmich, client: ImmichClient
) -> None:
    assert client.albums() == []
    fake.hang_up_next(path="/tags")  # closed between the client's look and its send

    assert client.tags() == []

    assert client.requests_made == 2
    assert fake.count("/tags") == 2  # sent twice: once unanswered, once on a new connection
    assert fake.connections_accepted == 2
    fake.hang_up_next(path="/tags")
    client.close()  # a fresh connection: its failure is the error, not tried anew
    with pytest.raises(ImmichUnreachable, match="failed to connect"):
        client.tags()
    assert fake.count("/tags") == 3


def test_a_closed_connection_is_tried_anew_once_and_then_the_failure_is_the_error(
    fake: FakeImmich, client: ImmichClient
) -> None:
    assert client.albums() == []
    fake.hang_up()
    fake.stop()

    with pytest.raises(ImmichUnreachable, match="failed to connect"):
        client.tags()
    assert client.requests_made == 2


class _Version(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    connections = 0

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b'{"major": 3, "minor": 0, "patch": 3}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def tls_immich(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server answering the version, with a self-signed certificate: (URL, cert)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    _Version.connections = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Version)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", cert
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_https_checks_the_certificate_against_the_system_store(
    tls_immich: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, cert = tls_immich
    with ImmichClient(url, "key") as c, pytest.raises(ImmichUnreachable, match="failed to connect"):
        c.version()  # self-signed: refused

    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # how a private CA is trusted
    with ImmichClient(url, "key") as c:
        assert c.version() == c.version() == (3, 0, 3)
    assert _Version.connections == 1  # both calls on one (a refused handshake has no handler)


def test_the_daemons_load_no_http_library() -> None:
    code = (
        "import sys, bridge.service, renderer.service, renderer.upstream; "
        "print(sorted(m for m in ('requests', 'urllib3') if m in sys.modules))"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# -- key, server -----------------------------------------------------------------------------


def test_missing_scopes_lists_what_the_key_lacks(fake: FakeImmich, client: ImmichClient) -> None:
    assert client.missing_scopes(NEEDED) == []  # the default key has "all"
    key = fake.add_key(["asset.read", "album.read", "tag.read"])
    with ImmichClient(fake.url, key) as limited:
        assert limited.permissions() == ["asset.read", "album.read", "tag.read"]
        assert limited.missing_scopes([*NEEDED, "asset.view"]) == [
            "asset.view",
            "person.read",
            "memory.read",
        ]


def test_version_and_ping(fake: FakeImmich, client: ImmichClient) -> None:
    assert client.ping() is True
    assert client.version() == (3, 0, 3)
    fake.version_reported = (3, 3, 5)
    assert client.version() == (3, 3, 5)


def test_a_url_with_api_already_on_it_works(fake: FakeImmich) -> None:
    with ImmichClient(fake.url + "/api/", fake.api_key) as c:
        assert c.version() == (3, 0, 3)
    assert fake.requests[-1].path == "/api/server/version"


# -- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "size", "media", "expected"),
    [
        (4032, 3024, "preview", "image/jpeg", (1920, 1440)),
        (3024, 4032, "preview", "image/jpeg", (1440, 1920)),
        (4032, 3024, "thumbnail", "image/webp", (333, 250)),
        (800, 600, "preview", "image/jpeg", (800, 600)),  # never enlarged
    ],
)
def test_thumbnail_sizes_and_types_follow_immich(
    fake: FakeImmich,
    client: ImmichClient,
    width: int,
    height: int,
    size: str,
    media: str,
    expected: tuple[int, int],
) -> None:
    asset = fake.add_asset(width=width, height=height, orientation="6")

    data, content_type = client.thumbnail(asset, size)

    assert content_type == media
    img = Image.open(io.BytesIO(data))
    assert img.format == media.split("/")[1].upper()
    assert img.size == expected
    marker = img.convert("L").getpixel((1, 1))  # the upright marker is white, top left
    assert isinstance(marker, int) and marker > 240
    assert fake.requests[-1].query == {"size": size, "edited": "true"}


def test_thumbnail_bytes_change_after_an_edit(fake: FakeImmich, client: ImmichClient) -> None:
    asset = fake.add_asset()
    before = client.thumbnail(asset)[0]
    assert client.thumbnail(asset)[0] == before
    fake.edit(asset)
    assert client.thumbnail(asset)[0] != before


def test_a_thumbnail_over_the_limit_is_refused_without_reading_it(
    fake: FakeImmich, client: ImmichClient
) -> None:
    asset = fake.add_asset()
    with pytest.raises(ImmichResponseError, match="limit"):
        client.thumbnail(asset, max_bytes=1000)
    assert client.bytes_received == 0  # Content-Length said it all


def test_a_thumbnail_without_length_stops_just_past_the_limit(
    fake: FakeImmich, client: ImmichClient
) -> None:
    asset = fake.add_asset()
    fake.no_length_next(1)
    with pytest.raises(ImmichResponseError, match="limit"):
        client.thumbnail(asset, max_bytes=1000)
    assert 1000 < client.bytes_received <= 1000 + (64 << 10)

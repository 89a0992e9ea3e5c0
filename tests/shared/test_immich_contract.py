"""The fake Immich and the client hold to Immich 3.0.3's own OpenAPI document.

Varied traffic (favourites, partner, archived, trashed, live photos, exif, people, faces,
albums, tags, memories, thumbnails, errors) is recorded; every response the fake served must
match the spec's schema for its operation and status, and every request the client sent must
exist in the spec with declared query parameters and a body without undeclared keys. The
fake's endpoints must demand the same scopes the spec names. A drift on either side fails.
The second half checks the fake's behaviour: what Immich's search selects, and when.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from PIL import Image

from common.immich import USER_AGENT, ImmichClient, ImmichError, ImmichNotFound, ImmichNotReady
from tests.kit.fakes.immich import Exchange, FakeImmich
from tests.kit.fakes.immich_routes import ROUTES
from tests.kit.openapi import spec

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
NOBODY = "9b2f6c1e-3f4a-4d5b-8c6d-7e8f9a0b1c2d"


def _seed(fake: FakeImmich) -> dict[str, str]:
    fake.now = NOW - timedelta(days=1)
    partner = fake.add_partner("Bea")
    alice, bob = fake.add_person("Alice"), fake.add_person("Bob", favorite=True)
    ghost = fake.add_person("Ghost", hidden=True)
    family = fake.add_tag("family")
    kids = fake.add_tag("kids", parent=family, color="#ff8800")
    taken = datetime(2019, 6, 1, 15, 30, tzinfo=UTC)
    photo = fake.add_asset(
        favorite=True, taken=taken, city="Lyon", state="Auvergne-Rhône-Alpes", country="France",
        description="Picnic", time_zone="Europe/Paris", make="Canon", model="EOS R6", rating=5,
    )  # fmt: skip
    portrait = fake.add_asset(favorite=True, width=3024, height=4032, orientation="6")
    live = fake.add_asset(favorite=True, live=True)
    video = fake.add_asset(type="VIDEO", favorite=True)
    shared = fake.add_asset(favorite=True, owner=partner)
    archived, trashed = fake.add_asset(favorite=True), fake.add_asset(favorite=True)
    fresh = fake.add_asset(favorite=True, previewed=False)
    fake.stack(*fake.add_assets(3, favorite=True))
    fake.add_assets(30)
    fake.now = NOW
    fake.archive(archived)
    fake.trash(trashed)
    fake.edit(photo)
    fake.add_face(photo, alice)
    fake.add_face(photo, bob, box=(100, 100, 300, 320))
    fake.add_face(photo)
    fake.add_face(portrait, ghost)
    fake.tag(photo, kids)
    album = fake.add_album("Family", [photo, portrait, trashed], description="Us")
    fake.add_album("Empty")
    fake.add_memory(NOW.date(), [photo, portrait, trashed])
    return {
        "photo": photo, "portrait": portrait, "live": live, "video": video, "shared": shared,
        "archived": archived, "trashed": trashed, "album": album, "alice": alice,
        "family": family, "fresh": fresh,
    }  # fmt: skip


def _client_traffic(fake: FakeImmich, ids: dict[str, str]) -> None:
    """Everything the client can do, against varied data."""
    since = (NOW - timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    with ImmichClient(fake.url, fake.api_key) as c:
        c.ping(), c.version(), c.permissions(), c.missing_scopes(["asset.read"]), c.me()
        for filters in (
            {"isFavorite": True, "type": "IMAGE", "visibility": "timeline", "withExif": True},
            {"isFavorite": True, "withStacked": True},
            {"updatedAfter": since, "type": "IMAGE"},
            {"withDeleted": True, "isFavorite": True},
            {"trashedAfter": since},
            {"albumIds": [ids["album"]], "withPeople": True},
            {"personIds": [ids["alice"]], "withExif": True, "withPeople": True},
            {"tagIds": [ids["family"]]},
            {"isMotion": True, "order": "asc", "takenBefore": since},
            {},
        ):
            list(c.search_assets(filters, size=7))
        c.asset(ids["photo"]), c.albums(), c.people(), c.tags(), c.faces(ids["photo"])
        c.memories(NOW), c.memories(NOW + timedelta(days=3))
        for key in ("photo", "portrait", "video", "shared", "trashed"):
            c.thumbnail(ids[key]), c.thumbnail(ids[key], "thumbnail")
        with pytest.raises(ImmichNotReady):
            c.thumbnail(ids["fresh"])
        c.set_favorite([ids["portrait"]], False)
        skip = c.create_tag("frame-skip")["id"]
        assert [r["success"] for r in c.tag_assets(skip, [ids["portrait"], ids["shared"]])] == [
            True,
            False,
        ]
        with pytest.raises(ImmichNotFound):
            c.set_favorite([ids["shared"]], True)  # a partner's photo: refused whole
        with pytest.raises(ImmichError):
            c.create_tag("frame-skip")  # already there
        fake.fail_next(1, status=500, path="/albums")
        for call in (c.albums, lambda: c.thumbnail(NOBODY), lambda: c.faces(NOBODY)):
            with pytest.raises(ImmichError):
                call()
    for key in ("wrong-key", fake.add_key(["asset.read"])):
        with ImmichClient(fake.url, key) as limited, pytest.raises(ImmichError):
            limited.thumbnail(ids["photo"])


def _raw_traffic(fake: FakeImmich) -> None:
    """Calls the client never makes, to see the fake's error bodies."""
    key = {"x-api-key": fake.api_key}
    base = fake.url + "/api"
    requests.post(f"{base}/search/metadata", json={"size": 1001}, headers=key, timeout=5)
    requests.post(
        f"{base}/search/metadata", json={"page": 0, "type": "PHOTO"}, headers=key, timeout=5
    )
    requests.get(f"{base}/faces", params={"id": "not-a-uuid"}, headers=key, timeout=5)
    requests.get(f"{base}/memories", params={"for": NOW.isoformat()}, headers=key, timeout=5)
    requests.get(f"{base}/albums", timeout=5)
    requests.get(f"{base}/no-such-endpoint", headers=key, timeout=5)


@pytest.fixture(scope="module")
def traffic() -> Iterator[tuple[FakeImmich, list[Exchange]]]:
    with FakeImmich(record_bodies=True) as fake:
        ids = _seed(fake)
        _client_traffic(fake, ids)
        _raw_traffic(fake)
        yield fake, list(fake.exchanges)


def test_every_response_the_fake_served_matches_the_spec(
    traffic: tuple[FakeImmich, list[Exchange]],
) -> None:
    fake, exchanges = traffic
    problems: list[str] = []
    for ex in exchanges:
        found = spec().find(ex.request.method, ex.request.path)
        if found is None:
            assert ex.status == 404, f"{ex.request.path} is not in the spec but answered"
            continue
        for issue in spec().response_issues(found[0], ex.status, ex.content_type, ex.body):
            problems.append(f"{ex.request.method} {ex.request.path} → {ex.status}: {issue}")
        if ex.status == 200 and ex.content_type.startswith("image/"):
            fmt = Image.open(io.BytesIO(ex.body)).format or ""
            assert ex.content_type == f"image/{fmt.lower()}"
    assert not problems, "\n".join(problems)
    assert fake.server_errors == []


def test_every_request_the_client_sent_matches_the_spec(
    traffic: tuple[FakeImmich, list[Exchange]],
) -> None:
    _, exchanges = traffic
    sent = [ex for ex in exchanges if ex.headers.get("user-agent") == USER_AGENT]
    problems: list[str] = []
    for ex in sent:
        req = ex.request
        found = spec().find(req.method, req.path)
        if found is None:
            problems.append(f"{req.method} {req.path} is not an Immich 3.0.3 operation")
            continue
        for issue in spec().request_issues(found[0], found[1], req.query, req.body, strict=True):
            problems.append(f"{req.method} {req.path}: {issue}")
    assert len(sent) > 30
    assert not problems, "\n".join(problems)


def test_the_traffic_reached_every_endpoint_and_status(
    traffic: tuple[FakeImmich, list[Exchange]],
) -> None:
    _, exchanges = traffic
    reached = set()
    for ex in exchanges:
        found = spec().find(ex.request.method, ex.request.path)
        if found is not None:
            reached.add((found[0].method, found[0].template))
    assert reached == {(r.method, r.template) for r in ROUTES}
    assert {ex.status for ex in exchanges} == {200, 201, 204, 400, 401, 403, 404, 500}


def test_each_fake_endpoint_demands_the_scope_the_spec_names() -> None:
    for route in ROUTES:
        found = spec().find(route.method, route.template.replace("{id}", NOBODY))
        assert found is not None, f"{route.method} {route.template} is not in the spec"
        assert found[0].template == route.template
        assert route.permission == found[0].permission, route.template


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r.method} {r.template}")
def test_each_fake_endpoint_enforces_its_scope(route: Any) -> None:
    with FakeImmich() as fake:
        asset = fake.add_asset()
        bare = fake.add_key([])  # a valid key without any scope
        url = fake.url + "/api" + route.template.replace("{id}", asset)
        params = {"id": asset} if route.template == "/faces" else None
        body: dict[str, Any] | None = {} if route.method == "POST" else None
        reply = requests.request(
            route.method, url, params=params, json=body, headers={"x-api-key": bare}, timeout=5
        )
        if isinstance(route.permission, str):
            assert reply.status_code == 403
            expected = f"Missing required permission: {route.permission}"
            assert reply.json() == {"message": expected}
        else:
            assert reply.status_code == 200
        anonymous = requests.request(route.method, url, params=params, json=body, timeout=5)
        assert anonymous.status_code == (200 if route.permission is None else 401)


# -- the validator itself catches drift ------------------------------------------------------


def _search_reply(**asset_changes: Any) -> dict[str, Any]:
    with FakeImmich() as fake:
        fake.add_assets(3)
        reply: dict[str, Any] = requests.post(
            f"{fake.url}/api/search/metadata",
            json={"size": 2},
            headers={"x-api-key": fake.api_key},
            timeout=5,
        ).json()
    reply["assets"]["items"][0].update(asset_changes)
    return reply


def _response_issues(body: dict[str, Any]) -> list[str]:
    op, _ = spec().find("POST", "/api/search/metadata") or (None, None)
    assert op is not None
    return [
        str(i)
        for i in spec().response_issues(op, 200, "application/json", json.dumps(body).encode())
    ]


def test_the_validator_accepts_the_fakes_search_reply() -> None:
    assert _response_issues(_search_reply()) == []


def test_the_validator_catches_a_field_of_the_wrong_type() -> None:
    reply = _search_reply(isFavorite="yes")
    reply["assets"]["nextPage"] = 2  # Immich sends "2"
    issues = _response_issues(reply)
    assert any("assets/nextPage" in i and "expected string" in i for i in issues)
    assert any("isFavorite" in i and "expected boolean" in i for i in issues)


def test_the_validator_catches_a_field_the_spec_does_not_list() -> None:
    issues = _response_issues(_search_reply(isFavourite=True))
    assert any("Unrecognized key: isFavourite" in i for i in issues)


def test_the_validator_catches_an_unknown_body_key_and_undeclared_query() -> None:
    op, params = spec().find("POST", "/api/search/metadata") or (None, {})
    assert op is not None
    body = {"isFavourite": True, "size": 10}
    strict = spec().request_issues(op, params, {"limit": "5"}, body, strict=True)
    assert {i.code for i in strict} == {"unrecognized_keys"}
    assert {i.where for i in strict} == {"body", "query"}
    assert spec().request_issues(op, params, {}, body, strict=False) == []  # Immich drops it
    assert spec().find("GET", "/api/assets/random-walk/thumbnail/extra") is None


# -- the fake behaves as Immich 3.x does -----------------------------------------------------


@pytest.fixture(scope="module")
def library() -> Iterator[tuple[FakeImmich, dict[str, str]]]:
    """A small library with one asset of each kind that search treats differently."""
    with FakeImmich() as fake:
        fake.now = NOW - timedelta(days=2)
        partner = fake.add_partner()
        names = {
            "fav": fake.add_asset(
                favorite=True, city="Lyon", taken=datetime(2019, 5, 1, tzinfo=UTC)
            ),
            "plain": fake.add_asset(taken=datetime(2020, 5, 1, tzinfo=UTC)),
            "live": fake.add_asset(favorite=True, live=True),
            "video": fake.add_asset(type="VIDEO", favorite=True),
            "partner": fake.add_asset(favorite=True, owner=partner),
            "archived": fake.add_asset(favorite=True, visibility="archive"),
            "trashed": fake.add_asset(favorite=True),
            "locked": fake.add_asset(favorite=True, visibility="locked"),
        }
        names["live.video"] = fake.asset(names["live"]).live_video_id or ""
        fake.now = NOW
        fake.trash(names["trashed"])
        alice, bob = fake.add_person("Alice"), fake.add_person("Bob")
        for who, where in ((alice, "fav"), (alice, "plain"), (bob, "plain")):
            fake.add_face(names[where], who)
        parent = fake.add_tag("frame")
        child = fake.add_tag("kitchen", parent=parent)
        fake.tag(names["fav"], child)
        fake.tag(names["plain"], parent)
        first = fake.add_album("First", [names["fav"], names["plain"]])
        second = fake.add_album("Second", [names["plain"], names["video"]])
        extra = {"alice": alice, "bob": bob, "parent": parent, "child": child}
        yield fake, {**names, **extra, "first": first, "second": second}


SEARCHES = [
    ({}, "fav plain live live.video video partner archived"),
    ({"type": "IMAGE"}, "fav plain live partner archived"),
    ({"type": "IMAGE", "visibility": "timeline"}, "fav plain live partner"),
    ({"isFavorite": True, "type": "IMAGE"}, "fav live partner archived"),
    (
        {"isFavorite": True, "type": "IMAGE", "withDeleted": True},
        "fav live partner archived trashed",
    ),
    ({"trashedAfter": "2025-06-01T00:00:00.000Z"}, "trashed"),
    ({"visibility": "hidden"}, "live.video"),
    ({"isMotion": True}, "live"),
    ({"city": "Lyon"}, "fav"),
    ({"takenBefore": "2020-12-31T00:00:00.000Z"}, "fav plain"),
    ({"albumIds": ["first"]}, "fav plain"),
    ({"albumIds": ["first", "second"]}, "plain"),
    ({"personIds": ["alice"]}, "fav plain"),
    ({"personIds": ["alice", "bob"]}, "plain"),
    ({"tagIds": ["parent"]}, "fav plain"),
    ({"tagIds": ["child"]}, "fav"),
    ({"updatedAfter": "2025-06-01T00:00:00.000Z", "withDeleted": True}, "trashed"),
]


@pytest.mark.parametrize(("filters", "expected"), SEARCHES, ids=[str(f) for f, _ in SEARCHES])
def test_search_selects_what_immich_selects(
    library: tuple[FakeImmich, dict[str, str]], filters: dict[str, Any], expected: str
) -> None:
    fake, names = library
    by_id = {v: k for k, v in names.items()}
    resolved = {k: [names[x] for x in v] if isinstance(v, list) else v for k, v in filters.items()}
    with ImmichClient(fake.url, fake.api_key) as c:
        found = {by_id[a["id"]] for a in c.search_assets(resolved)}
    assert found == set(expected.split())


def test_results_come_newest_first_unless_asked_otherwise(
    library: tuple[FakeImmich, dict[str, str]],
) -> None:
    fake, _ = library
    with ImmichClient(fake.url, fake.api_key) as c:
        desc = [a["fileCreatedAt"] for a in c.search_assets({"type": "IMAGE"})]
        asc = [a["fileCreatedAt"] for a in c.search_assets({"type": "IMAGE", "order": "asc"})]
    assert desc == sorted(desc, reverse=True) and asc == sorted(asc)


def test_favourite_toggles_move_updated_at_so_one_poll_sees_both() -> None:
    with FakeImmich() as fake, ImmichClient(fake.url, fake.api_key) as c:
        fake.now = NOW
        liked, disliked, untouched = fake.add_assets(3, favorite=False)
        fake.favorite(disliked)
        poll = fake.advance(60).isoformat().replace("+00:00", "Z")
        fake.advance(60)
        fake.favorite(liked)
        fake.unfavorite(disliked)
        fake.add_album("Album", [untouched])  # album rows do not touch the asset row
        changed = {a["id"]: a for a in c.search_assets({"updatedAfter": poll, "type": "IMAGE"})}
    assert set(changed) == {liked, disliked}
    assert changed[liked]["isFavorite"] and not changed[disliked]["isFavorite"]
    assert changed[liked]["updatedAt"] == "2025-06-01T12:02:00.000Z"


def test_an_edit_changes_the_thumbhash_and_a_new_file_the_checksum() -> None:
    with FakeImmich() as fake, ImmichClient(fake.url, fake.api_key) as c:
        asset = fake.add_asset()
        before = c.asset(asset)
        fake.edit(asset)
        edited = c.asset(asset)
        fake.replace_file(asset)
        replaced = c.asset(asset)
    assert edited["thumbhash"] != before["thumbhash"]
    assert edited["checksum"] == before["checksum"] and edited["isEdited"]
    assert replaced["checksum"] != edited["checksum"] and len(replaced["checksum"]) == 28


def test_a_permanent_delete_leaves_no_row_anywhere() -> None:
    with FakeImmich() as fake, ImmichClient(fake.url, fake.api_key) as c:
        kept, gone = fake.add_assets(2)
        fake.add_face(gone, fake.add_person("Alice"))
        fake.add_album("Album", [kept, gone])
        fake.delete(gone)
        assert [a["id"] for a in c.search_assets({"withDeleted": True})] == [kept]
        assert c.albums()[0]["assetCount"] == 1
        with pytest.raises(ImmichError):
            c.faces(gone)


def test_memories_show_on_their_day_without_trashed_photos() -> None:
    with FakeImmich() as fake, ImmichClient(fake.url, fake.api_key) as c:
        kept, trashed = fake.add_assets(2, start=datetime(2021, 6, 1, 9, tzinfo=UTC))
        fake.trash(trashed)
        fake.add_memory(NOW.date(), [kept, trashed])
        today = c.memories(NOW)
        assert c.memories(NOW + timedelta(days=1)) == []
    assert [a["id"] for a in today[0]["assets"]] == [kept]
    assert today[0]["data"] == {"year": 2021}
    assert fake.requests[-1].query == {"for": "2025-06-02", "type": "on_this_day"}


def test_exif_orientation_and_local_time_follow_immich() -> None:
    with FakeImmich() as fake, ImmichClient(fake.url, fake.api_key) as c:
        asset = fake.add_asset(
            width=3024, height=4032, orientation="6", time_zone="Europe/Paris",
            taken=datetime(2024, 7, 14, 20, 0, tzinfo=UTC),
        )  # fmt: skip
        fake.add_face(asset)
        found, face = c.asset(asset), c.faces(asset)[0]
    assert (found["width"], found["height"]) == (3024, 4032)  # upright
    exif = found["exifInfo"]
    assert (exif["exifImageWidth"], exif["exifImageHeight"], exif["orientation"]) == (
        4032,
        3024,
        "6",
    )
    assert found["localDateTime"] == "2024-07-14T22:00:00.000Z"  # wall clock in Paris
    assert (face["imageWidth"], face["imageHeight"]) == (1440, 1920)  # preview coordinates


def test_validation_errors_are_worded_like_immich_and_unknown_keys_are_dropped() -> None:
    with FakeImmich() as fake:
        fake.add_asset()

        def post(body: dict[str, Any]) -> requests.Response:
            url = f"{fake.url}/api/search/metadata"
            return requests.post(url, json=body, headers={"x-api-key": fake.api_key}, timeout=5)

        assert post({"colour": "red", "size": 5}).status_code == 200
        reply = post({"size": 0})
    assert reply.status_code == 400
    assert reply.json() == {
        "message": "Validation failed",
        "errors": [
            {"origin": "number", "code": "too_small", "minimum": 1, "inclusive": True,
             "path": ["size"], "message": "Too small: expected number to be >=1"}
        ],
    }  # fmt: skip


def test_30000_favourites_seed_at_once_and_cost_no_images_until_fetched() -> None:
    with FakeImmich() as fake, ImmichClient(fake.url, fake.api_key) as c:
        ids = fake.add_favorites(30_000)
        items, following = c.search_page({"isFavorite": True, "type": "IMAGE"})
        assert fake.thumbnails_rendered == 0
        c.thumbnail(ids[0])
        c.thumbnail(ids[0])
    assert len(set(ids)) == 30_000
    assert (len(items), following) == (1000, 2)
    assert fake.thumbnails_rendered == 1


def test_the_edited_preview_is_served_only_when_asked_for() -> None:
    with FakeImmich() as fake:
        photo, untouched = fake.add_assets(2)
        fake.edit(photo, rotate=90)
        url = f"{fake.url}/api/assets/{{}}/thumbnail"
        key = {"x-api-key": fake.api_key}

        def size(asset: str, **query: str) -> tuple[int, int]:
            reply = requests.get(url.format(asset), params=query, headers=key, timeout=5)
            return Image.open(io.BytesIO(reply.content)).size

        def body(asset: str, **query: str) -> bytes:
            return requests.get(url.format(asset), params=query, headers=key, timeout=5).content

        assert size(photo, size="preview") == (1920, 1440)  # unedited, as Immich answers
        assert size(photo, size="preview", edited="true") == (1440, 1920)
        assert body(untouched, size="preview") == body(untouched, size="preview", edited="true")


def test_a_partners_favourite_is_found_by_the_filter_but_reads_as_no_favourite() -> None:
    with FakeImmich() as fake, ImmichClient(fake.url, fake.api_key) as c:
        theirs = fake.add_asset(favorite=True, owner=fake.add_partner())
        mine = fake.add_asset(favorite=True)
        found = {a["id"]: a["isFavorite"] for a in c.search_assets({"isFavorite": True})}
    assert found == {theirs: False, mine: True}


def test_a_fresh_upload_has_no_thumbhash_and_no_preview_until_its_job_ran() -> None:
    with FakeImmich() as fake, ImmichClient(fake.url, fake.api_key) as c:
        fake.now = NOW
        fresh = fake.add_asset(previewed=False)
        assert c.asset(fresh)["thumbhash"] is None
        reply = requests.get(
            f"{fake.url}/api/assets/{fresh}/thumbnail", headers={"x-api-key": fake.api_key},
            timeout=5,
        )  # fmt: skip
        assert (reply.status_code, reply.json()["message"]) == (404, "Asset media not found")
        fake.advance(2)
        fake.make_previews(fresh)
        ready = c.asset(fresh)
        assert ready["thumbhash"] and ready["updatedAt"] == "2025-06-01T12:00:02.000Z"
        assert c.thumbnail(fresh)[1] == "image/jpeg"


def test_every_member_of_a_stack_is_found_and_with_stacked_names_its_primary() -> None:
    with FakeImmich() as fake, ImmichClient(fake.url, fake.api_key) as c:
        single = fake.add_asset()
        burst = fake.add_assets(3)
        stack_id = fake.stack(*burst)
        plain = {a["id"]: a for a in c.search_assets({"type": "IMAGE"})}
        marked = {a["id"]: a["stack"] for a in c.search_assets({"withStacked": True})}
        unstacked = [a["id"] for a in c.search_assets({"withStacked": False})]
    assert set(plain) == {single, *burst} and all("stack" not in a for a in plain.values())
    assert marked[single] is None
    assert {marked[b]["primaryAssetId"] for b in burst} == {burst[0]}
    assert marked[burst[1]] == {"id": stack_id, "primaryAssetId": burst[0], "assetCount": 3}
    assert unstacked == [single]  # Immich's `withStacked: false` drops every stacked asset

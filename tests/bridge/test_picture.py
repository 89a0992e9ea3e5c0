"""The `picture` payload stays within a page's size whatever Immich holds about a photo."""

from __future__ import annotations

import json

import pytest

from bridge import picture

PID = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
URL = "http://127.0.0.1:8080/v1/frames/kitchen/pictures/" + PID + ".jpg?exp=1&sig=ab"


def meta(description: str = "", people: int = 1, albums: int = 1) -> dict[str, object]:
    return {
        "taken": "2024-06-01T12:00:00+02:00",
        "city": "Lyon",
        "country": "France",
        "people": [f"Person with a long name number {i}" for i in range(people)],
        "albums": [f"Album with a long name number {i}" for i in range(albums)],
        "description": description,
    }


def test_ordinary_payload_is_kept_whole() -> None:
    doc = json.loads(picture.payload(PID, URL, [meta("Picnic by the river")]))
    assert doc["description"] == "Picnic by the river"
    assert doc["people"] == ["Person with a long name number 0"] and doc["url"] == URL


def test_huge_description_is_cut_to_fit() -> None:
    data = picture.payload(PID, URL, [meta("é" * 20_000)])
    assert len(data) <= picture.PAYLOAD_LIMIT
    doc = json.loads(data)
    assert doc["description"].endswith("…") and len(doc["description"]) > 3000
    assert doc["city"] == "Lyon" and doc["url"] == URL


def test_hundreds_of_people_and_albums_are_capped() -> None:
    data = picture.payload(PID, URL, [meta("x" * 6000, people=500, albums=500)])
    assert len(data) <= picture.PAYLOAD_LIMIT
    doc = json.loads(data)
    assert 0 < len(doc["people"]) <= picture.MAX_NAMES
    assert 0 < len(doc["albums"]) <= picture.MAX_NAMES


@pytest.mark.usefixtures("gc_paused")
def test_malformed_frame_states_and_payloads_are_none() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    assert picture.state_picture(deep) is None
    assert picture.state_picture(b'{"picture": ' + deep + b"}") is None
    assert picture.parse_published(deep) is None
    # int() refuses "²" although str.isdigit accepts it; a broken URL is no expiry either.
    odd = json.dumps({"id": PID, "url": "http://r/x.jpg?exp=%C2%B2"}).encode()
    assert picture.parse_published(odd) == picture.Shown(PID, None)
    broken = json.dumps({"id": PID, "url": "http://[r/x.jpg?exp=5"}).encode()
    assert picture.parse_published(broken) == picture.Shown(PID, None)

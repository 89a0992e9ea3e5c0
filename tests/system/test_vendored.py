"""Reference data vendored under tests/data/ must match the shared design material it copies."""

from __future__ import annotations

import pytest

from tests.kit import ROOT

DATA = ROOT / "tests" / "data"
SHARED = ROOT.parent / "shared"

# vendored file (relative to tests/data) -> its source (relative to the shared folder)
VENDORED = {
    "immich-openapi-3.0.3.json": "immich/immich-openapi-3.0.3.json",
    "compose-spec.json": "compose/compose-spec.json",
    "titano_pcb_geometry.json": "hardware/titano_pcb_geometry.json",
    "homeassistant/abbreviations.json": "homeassistant/abbreviations.json",
    "homeassistant/device_classes.json": "homeassistant/device_classes.json",
    "homeassistant/mqtt_discovery_schema.json": "homeassistant/mqtt_discovery_schema.json",
    "homeassistant/version_compat.json": "homeassistant/version_compat.json",
}


@pytest.mark.parametrize("copy,source", sorted(VENDORED.items()))
def test_vendored_copy_matches_source(copy: str, source: str) -> None:
    vendored = DATA / copy
    assert vendored.is_file(), f"tests/data/{copy} is missing"
    original = SHARED / source
    if not SHARED.is_dir():
        pytest.skip("the shared design folder is not beside this checkout")
    assert vendored.read_bytes() == original.read_bytes(), (
        f"tests/data/{copy} drifted from {source}"
    )

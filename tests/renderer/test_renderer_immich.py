"""The renderer against Immich as it really behaves: edited photos, fresh uploads, captions."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from common.config import ImageProfile, ImmichConfig
from common.immich import ImmichClient
from renderer import imaging, work
from renderer.upstream import Upstream, UpstreamSpec
from tests.kit import rendererkit
from tests.kit.fakes.immich import FakeImmich
from tests.kit.rendererkit import StartRig, versions, wait_for

fake = rendererkit.fake
start_rig = rendererkit.start_rig


def _upstream(fake: FakeImmich) -> Upstream:
    return Upstream(UpstreamSpec(ImmichConfig(fake.url, fake.api_key), 10.0, 8 << 20))


def test_a_photo_rotated_in_immichs_editor_is_rendered_from_its_edited_preview() -> None:
    with FakeImmich() as fake:
        photo = fake.add_asset(width=4032, height=3024)
        fake.edit(photo, rotate=90)
        with ImmichClient(fake.url, fake.api_key) as client:
            listed = next(iter(client.search_assets({"id": photo})))
        source = _upstream(fake).fetch(photo, ImageProfile())
    shown = Image.open(io.BytesIO(source.data)).size
    assert (listed["width"], listed["height"]) == (3024, 4032)  # what pairing goes by
    assert shown == (1440, 1920)  # a portrait, as pairing was told
    assert [r.query.get("edited") for r in fake.requests if r.path.endswith("/thumbnail")] == [
        "true"
    ]


def test_faces_found_before_a_rotation_are_not_placed_on_the_rotated_preview() -> None:
    with FakeImmich() as fake:
        photo = fake.add_asset(width=4032, height=3024)
        fake.add_face(photo, box=(0, 0, 200, 200))  # top left of the unedited landscape
        fake.edit(photo, rotate=90)
        source = _upstream(fake).fetch(photo, ImageProfile(fit="smart"))
    assert len(source.faces) == 1 and source.faces[0][4:] == (1920, 1440)
    size = Image.open(io.BytesIO(source.data)).size
    assert imaging._scale_faces(source.faces, size) == []
    assert len(imaging._scale_faces(source.faces, (1920, 1440))) == 1


def test_a_fresh_upload_is_503_with_retry_after_and_nothing_is_cached(
    start_rig: StartRig,
) -> None:
    rig = start_rig()
    fresh = rig.fake.add_asset(favorite=True, width=960, height=640, previewed=False)
    rig.publish_manifest("kitchen", versions([fresh]), "bmp16")
    # The pre-render met it first: a failure that may pass, so it is retried later.
    assert wait_for(lambda: rig.metric('upstream_errors_total{kind="preview_not_ready"}') >= 1)

    resp = rig.get("kitchen", f"{fresh}.bmp")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    assert resp.json()["error"] == "preview_not_ready"
    assert rig.metric("cache_files") == 0

    rig.fake.make_previews(fresh)
    assert rig.get("kitchen", f"{fresh}.bmp").status_code == 200
    assert rig.metric("cache_files") == 1


def test_a_caption_immich_fails_to_give_fails_the_picture_retryably_and_caches_nothing(
    tmp_path: Path,
) -> None:
    with FakeImmich() as fake:
        photo = fake.add_asset(width=960, height=640, city="Lyon")
        spec = UpstreamSpec(ImmichConfig(fake.url, fake.api_key), 10.0, 8 << 20)
        work.configure(spec)
        task = work.Task((photo,), (), ImageProfile(caption="{city}"), "bmp", str(tmp_path / "p"))
        fake.fail_next(1, status=500, path=f"/assets/{photo}")  # the asset details call
        failed = work.produce(task)
        assert isinstance(failed, tuple) and failed[:2] == (503, "details_unavailable")
        assert failed[3] is True  # retryable: the pre-render and the frame ask again
        assert not (tmp_path / "p").exists()
        assert fake.count(f"/assets/{photo}/thumbnail") == 0

        assert work.produce(task) == (tmp_path / "p").stat().st_size  # now with its caption
        fake.fail_next(1, status=403, path=f"/assets/{photo}")  # will not pass: left out
        assert isinstance(work.produce(task), int)

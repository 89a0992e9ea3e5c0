"""A render worker answers every job, whatever goes wrong inside it."""

from __future__ import annotations

import pytest

from common.config import ImageProfile
from renderer import work


def test_an_unforeseen_error_fails_the_picture_not_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def produce(task: work.Task) -> int:
        raise OSError(75, "Value too large for defined data type")

    monkeypatch.setattr(work, "produce", produce)
    task = work.Task(("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",), (), ImageProfile(), "bmp", "x")
    answer = work._answer(task)
    assert isinstance(answer, tuple), answer  # a failure, not a file size
    status, code, detail, retryable = answer
    assert (status, code, retryable) == (502, "render_failed", False)
    assert "Value too large" in detail


def test_caption_album_comes_from_immich_only_when_the_caption_asks() -> None:
    from common.config import ImmichConfig
    from renderer.upstream import Upstream, UpstreamSpec
    from tests.kit.fakes.immich import FakeImmich

    with FakeImmich() as fake:
        asset = fake.add_asset(city="Lyon")
        fake.add_album("Trips", [asset])
        fake.add_album("Family", [asset])
        upstream = Upstream(UpstreamSpec(ImmichConfig(fake.url, fake.api_key), 10.0, 8 << 20))
        with_album = upstream.fetch(asset, ImageProfile(caption="{album} · {city}"))
        assert with_album.meta is not None
        assert (with_album.meta["album"], with_album.meta["city"]) == ("Family", "Lyon")
        assert fake.count("/api/albums") == 1
        upstream.fetch(asset, ImageProfile(caption="{city}"))
        assert fake.count("/api/albums") == 1  # no album in the caption: no extra request

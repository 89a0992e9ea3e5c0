"""A render worker answers every job, whatever goes wrong inside it."""

from __future__ import annotations

import pytest

from bridge.config import ImageProfile
from renderer import work


def test_an_unforeseen_error_fails_the_picture_not_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def produce(task: work.Task) -> int:
        raise OSError(75, "Value too large for defined data type")

    monkeypatch.setattr(work, "produce", produce)
    task = work.Task(("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",), (), ImageProfile(), "bmp", "x")
    status, code, detail, retryable = work._answer(task)
    assert (status, code, retryable) == (502, "render_failed", False)
    assert "Value too large" in detail

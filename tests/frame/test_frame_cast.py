"""The board's cast announcement parser and the end of a cast (titano_app/frame/cast.py), on
CPython; the whole way, download and screen included, is in tests/system/test_cast.py and, on
CircuitPython's VM, tests/frame/test_frame_vm.py."""

from __future__ import annotations

import json

import pytest

from titano_app.frame import cast
from titano_app.frame.cast import Cast, CastError


def _doc(**fields: object) -> bytes:
    base: dict[str, object] = {"v": 1, "id": "ab12", "url": "http://r:8080/c.bmp", "seconds": 30}
    return json.dumps({**base, **fields}).encode()


def test_an_announcement_is_read_from_bytes_or_a_view() -> None:
    assert cast.parse(_doc()) == ("http://r:8080/c.bmp", 30, "ab12")
    assert cast.parse(memoryview(bytearray(_doc(url="https://r/c.bmp")))) == (
        "https://r/c.bmp", 30, "ab12")  # fmt: skip


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[1, 2]",
        _doc(url=None),
        _doc(url="ftp://r/c.bmp"),
        _doc(seconds=True),  # a bool is no number of seconds, on the board as here
        _doc(seconds=0),
        _doc(seconds=601),
        _doc(seconds="30"),
    ],
)
def test_what_is_not_an_announcement_is_a_cast_error(payload: bytes) -> None:
    with pytest.raises(CastError) as caught:
        cast.parse(payload)
    assert caught.value.code == "cast_failed" and caught.value.detail


class _Show:
    def __init__(self) -> None:
        self.shown, self.due_ms, self.redraws = 0, 0, 0

    def redraw(self) -> None:
        self.redraws += 1


def _casting(show: _Show, until: int) -> Cast:
    c = Cast("/nowhere", None, lambda path: None)  # type: ignore[arg-type]
    c.until, c._drawn = until, show.shown
    return c


def test_the_end_of_a_cast() -> None:
    show = _Show()
    c = _casting(show, 10_000)
    c.tick(9_999, show, True)  # type: ignore[arg-type]
    assert c.until == 10_000 and show.due_ms == 0
    c.tick(10_000, show, True)  # type: ignore[arg-type]
    assert c.until == -1 and show.due_ms == 10_000 and show.redraws == 0  # the next picture
    # paused or the display off: the picture that was on screen, drawn again
    c = _casting(show, 20_000)
    c.tick(20_000, show, False)  # type: ignore[arg-type]
    assert show.redraws == 1 and show.due_ms == 10_000
    # a picture drawn over the cast meanwhile: nothing to do at its end
    c = _casting(show, 30_000)
    show.shown += 1
    c.tick(30_000, show, False)  # type: ignore[arg-type]
    assert c.until == -1 and show.redraws == 1

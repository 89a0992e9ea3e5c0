"""Frames coming online: a live `online` or a new boot id, each arrival counted once."""

from __future__ import annotations

from bridge.arrivals import Arrivals, parse_state


def test_a_live_online_is_an_arrival_the_retained_one_is_not() -> None:
    a = Arrivals()
    a.status("kitchen", b"online", retained=True)
    a.status("hall", b"offline", retained=False)
    assert a.take() == []
    a.status("kitchen", b"online", retained=False)
    a.status("kitchen", b"online", retained=False)
    assert a.take() == ["kitchen"] and a.take() == []


def test_a_new_boot_id_is_an_arrival_unless_its_online_was_seen() -> None:
    a = Arrivals()
    a.state("kitchen", {"boot": "0a1b2c3d"})  # the first one seen: nothing to compare with
    assert a.take() == []
    a.state("kitchen", {"boot": "0a1b2c3d"})
    a.state("kitchen", {"boot": "ffff0000"})  # rebooted faster than its status said so
    assert a.take() == ["kitchen"]
    a.status("kitchen", b"online", retained=False)
    a.state("kitchen", {"boot": "12345678"})  # the same arrival: counted once
    assert a.take() == ["kitchen"]
    a.state("kitchen", {"boot": 7})
    a.state("kitchen", {})
    assert a.take() == []


def test_parse_state_takes_objects_only() -> None:
    assert parse_state(b'{"boot": "0a1b2c3d"}') == {"boot": "0a1b2c3d"}
    assert parse_state(b"[1]") is None and parse_state(b"\xff") is None
    assert parse_state(b"{") is None

"""The board's clock (frame/hw.py): after Wi-Fi connects, the ESP32's NTP time sets the RTC;
until it has one, unix_time() is None and is asked again at most every 10 s. The hardware
modules are stand-ins here (displayio is Blinka's); time is mocked."""

from __future__ import annotations

import calendar
import importlib
import sys
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest

HARDWARE = ("analogio", "board", "busio", "digitalio", "microcontroller", "rtc",
            "sdcardio", "storage", "watchdog", "adafruit_esp32spi", "adafruit_touchscreen",
            "adafruit_connection_manager")  # fmt: skip
NTP_TIME = 1_763_884_800


class Esp:
    def __init__(self) -> None:
        self.answers: list[Any] = []
        self.is_connected = False
        self.joins = 0

    def connect_AP(self, ssid: str, password: str, timeout_s: int) -> None:
        self.joins += 1
        self.is_connected = True

    def get_time(self) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    """The parts of `time` hw.py uses: monotonic_ns moved by the test, time() from the RTC."""

    def __init__(self) -> None:
        self.ns = 5_000_000_000
        self.rtc: time.struct_time | None = None

    def monotonic_ns(self) -> int:
        return self.ns

    def localtime(self, seconds: int) -> time.struct_time:
        return time.gmtime(seconds)

    def time(self) -> float:
        assert self.rtc is not None, "time.time() before the RTC was set"
        return float(calendar.timegm(self.rtc))


@pytest.fixture
def hw(monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    for name in HARDWARE:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["adafruit_esp32spi"].adafruit_esp32spi = types.ModuleType("x")  # type: ignore[attr-defined]
    sys.modules["watchdog"].WatchDogMode = object  # type: ignore[attr-defined]
    monkeypatch.delitem(sys.modules, "titano_app.frame.hw", raising=False)
    module = importlib.import_module("titano_app.frame.hw")
    yield module
    sys.modules.pop("titano_app.frame.hw", None)
    vars(sys.modules["titano_app.frame"]).pop("hw", None)  # built on stand-ins: forget it


def board(hw: types.ModuleType, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Esp, Clock]:
    clock, esp = Clock(), Esp()

    class RTC:
        @property
        def datetime(self) -> time.struct_time | None:
            return clock.rtc

        @datetime.setter
        def datetime(self, value: time.struct_time) -> None:
            clock.rtc = value

    monkeypatch.setattr(hw, "time", clock)
    monkeypatch.setattr(hw.rtc, "RTC", RTC, raising=False)
    b = hw.Board.__new__(hw.Board)  # the hardware set-up itself needs the board
    b._esp, b._dog = esp, types.SimpleNamespace(feed=lambda: None)
    b._clock_set, b._clock_tried = False, -hw.CLOCK_RETRY_MS
    return b, esp, clock


def test_wifi_join_sets_the_clock_from_ntp(
    hw: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    b, esp, clock = board(hw, monkeypatch)
    monkeypatch.setenv("CIRCUITPY_WIFI_SSID", "home")
    esp.answers = [(NTP_TIME,)]  # what adafruit_esp32spi returns: a 1-tuple
    assert b.connect_wifi() and esp.joins == 1
    assert clock.rtc == time.gmtime(NTP_TIME)
    assert b.unix_time() == NTP_TIME


def test_no_ntp_yet_means_no_time_and_a_retry_10_s_later(
    hw: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    b, esp, clock = board(hw, monkeypatch)
    esp.answers = [OSError("_GET_TIME returned 0"), 12345, NTP_TIME + 60]
    assert b.unix_time() is None  # NTP not answered yet
    clock.ns += 9_000_000_000
    assert b.unix_time() is None and len(esp.answers) == 2  # not asked again within 10 s
    clock.ns += 1_000_000_000
    assert b.unix_time() is None  # 12345: the ESP32's clock before NTP, not a time
    assert clock.rtc is None
    clock.ns += 10_000_000_000
    assert b.unix_time() == NTP_TIME + 60  # some library versions return a plain int
    assert esp.answers == []
    assert b.unix_time() == NTP_TIME + 60  # set once: no more questions

"""Shared fixtures: a real Mosquitto from broker_config/, its log shown when a test fails."""

from __future__ import annotations

import gc
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit.broker import Mosquitto


def _docker_reachable() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        docker.from_env().ping()
        return True
    except Exception:
        return False


@pytest.fixture
def gc_paused() -> Iterator[None]:
    """What earlier tests left for the garbage collector is collected first, and no collection
    starts during the test: their finalizers would otherwise run inside it. That matters to a
    test that recurses to Python's limit on purpose (JSON nested 5,000 deep), where a finalizer
    (a paho client's, say) finds no stack left and fails as an unraisable exception, and to one
    that measures memory, where what a finalizer leaves (a warning pytest records) would count
    as the test's."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.fixture
def broker(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Mosquitto]:
    """A running Mosquitto on a free loopback port, with the project's config and test users."""
    if shutil.which("mosquitto") is None and not _docker_reachable():
        pytest.skip("needs the mosquitto binary (apt-get install mosquitto) or a Docker engine")
    b = Mosquitto(tmp_path / "broker")
    b.start()
    yield b
    b.close_clients()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(f"\n----- mosquitto log ({b.log_path}) -----\n{b.log()}")
    b.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report

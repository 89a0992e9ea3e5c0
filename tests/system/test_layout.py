"""The layout's dependency rule (docs/architecture.md, "Layout"), read from every module's imports:

- `common/` imports nothing else of the project, and never Pillow;
- `bridge/` and `renderer/` import `common/` and themselves, never each other;
- the board app (`titano_app/code.py`, `titano_app/frame/`) imports only itself;
- the simulator (`titano_app/sim/`) imports only the board app and itself;
- tools, benchmarks and tests may import anything.

Also: importing the bridge daemon or the shared package loads no Pillow, the console scripts in
pyproject.toml name functions that exist, and docs/architecture.md describes the tree there is.
"""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kit import ROOT

# Top-level folders that hold the project's Python; "frame" is the board app as the board
# imports it (code.py: `from frame.main import run`).
OURS = ("common", "bridge", "renderer", "titano_app", "tools", "tests", "bench", "case", "frame")
# Folder -> the parts its modules may import.
ALLOWED = {
    "common": {"common"},
    "bridge": {"common", "bridge"},
    "renderer": {"common", "renderer"},
    "titano_app/frame": {"titano_app.frame"},
    "titano_app/code.py": {"titano_app.frame"},
    "titano_app/sim": {"titano_app.frame", "titano_app.sim"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file, relative ones resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            yield node.lineno, base


def part(module: str) -> str | None:
    """The part of the project a module belongs to, or None when it is not ours."""
    first, _, rest = module.partition(".")
    if first not in OURS:
        return None
    if first == "frame":  # the board's name for the board app
        return "titano_app.frame"
    if first == "titano_app":
        return "titano_app." + rest.partition(".")[0] if rest else "titano_app"
    return first


def ruled_files() -> Iterator[tuple[Path, set[str]]]:
    for where, allowed in ALLOWED.items():
        path = ROOT / where
        for file in [path] if path.suffix == ".py" else sorted(path.rglob("*.py")):
            yield file, allowed


def test_every_part_imports_only_what_the_rule_allows() -> None:
    broken = []
    for file, allowed in ruled_files():
        for line, module in imported(file):
            found = part(module)
            if found is not None and found not in allowed:
                broken.append(f"{file.relative_to(ROOT)}:{line} imports {module}")
    assert broken == []


def test_the_rule_covers_every_module_of_the_shipped_parts() -> None:
    covered = {file for file, _ in ruled_files()}
    for folder in ("common", "bridge", "renderer", "titano_app"):
        assert set((ROOT / folder).rglob("*.py")) <= covered, folder
    assert len(covered) > 80  # the walk found the tree, not an empty folder


def test_the_shared_package_never_imports_pillow() -> None:
    found = [
        f"{file.relative_to(ROOT)}:{line}"
        for file in sorted((ROOT / "common").rglob("*.py"))
        for line, module in imported(file)
        if module.partition(".")[0] == "PIL"
    ]
    assert found == []


def test_relative_imports_resolve_within_their_package() -> None:
    main = ROOT / "titano_app" / "frame" / "main.py"  # `from .app import App, monotonic_ms`
    assert "titano_app.frame.app" in {module for _, module in imported(main)}
    assert part("titano_app.sim.device") == "titano_app.sim" and part("PIL.Image") is None


@pytest.mark.parametrize("package", ["common", "bridge"])
def test_importing_loads_no_pillow(package: str) -> None:
    """Every module of the package imported in a fresh interpreter: Pillow stays out (only a
    folder source's pictures, read when they are needed, bring it in)."""
    modules = sorted(
        module_name(p) for p in (ROOT / package).rglob("*.py") if p.name != "__main__.py"
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'PIL'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert len(modules) > 5 and result.stdout.strip() == "[]"


def test_console_scripts_name_functions_that_exist() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts: dict[str, str] = pyproject["project"]["scripts"]
    assert set(scripts) == {"titanoframe-bridge", "titanoframe-renderer"}
    for target in scripts.values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), target


ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()


def section(heading: str) -> str:
    """The text under the `## ` heading that starts with `heading`, up to the next one."""
    start = ARCHITECTURE.index("\n## " + heading)
    end = ARCHITECTURE.find("\n## ", start + 1)
    return ARCHITECTURE[start : end if end != -1 else None]


def table_modules(text: str) -> set[str]:
    """The `name.py` files named in the first column of the text's tables."""
    rows = (line.split("|")[1] for line in text.splitlines() if line.startswith("| `"))
    return {name for cell in rows for name in re.findall(r"`(\w+\.py)`", cell)}


@pytest.mark.parametrize(
    ("heading", "package"),
    [("Shared code (`common/`)", "common"), ("Bridge (`bridge/`)", "bridge"),
     ("Renderer (`renderer/`)", "renderer")],
)  # fmt: skip
def test_the_architecture_page_names_every_module_and_only_those(
    heading: str, package: str
) -> None:
    there = {p.name for p in (ROOT / package).glob("*.py")} - {"__init__.py", "__main__.py"}
    assert table_modules(section(heading)) == there


def test_the_architecture_page_names_every_top_level_folder() -> None:
    layout = section("Layout")
    folders = {p.name for p in ROOT.iterdir() if p.is_dir() and any(p.glob("*.py"))}
    assert folders == {
        "common",
        "bridge",
        "renderer",
        "titano_app",
        "tools",
        "tests",
        "bench",
        "case",
    }
    for folder in [*folders, "titano_app/sim", "broker_config"]:
        assert f"| `{folder}/`" in layout, folder

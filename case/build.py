"""Render the case: every printable part to STL, a JSON of key positions, and a PNG preview.

Runs OpenSCAD (and xvfb-run for the preview) as subprocesses, so this module does I/O.

    .venv/bin/python case/build.py                      # all parts + preview into case/out/
    .venv/bin/python case/build.py -D clearance=0.5 -D fastener=insert --out /some/dir
    .venv/bin/python case/build.py --preview docs/img/case.png

Exit status 0 on success; 1 with the failing part and OpenSCAD's message (a failed assert()
names the parameter and its value) on failure; 2 for bad command-line arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

CASE_DIR = Path(__file__).resolve().parent
PARTS = ("front_shell", "backplate", "stand")
# (camera: translate x,y,z, rotate x,y,z, distance; explode mm) for the two preview panels
VIEWS = (("0,0,0,68,0,28,0", 0), ("0,0,0,62,0,235,0", 35))
PANEL_HEIGHT = 560
MARGIN = 20
RENDER_TIMEOUT_S = 600
DERIVED_MARK = "derived (do not edit)"
_NAME = re.compile(r"^\$?[A-Za-z_][A-Za-z0-9_]*$")
_LITERAL = re.compile(r'^(-?[0-9.]+(e-?[0-9]+)?|true|false|".*"|\[.*\])$')


class BuildError(Exception):
    """A part failed to render, or the build was asked for something that cannot work."""


def known_parameters() -> set[str]:
    """Names params.scad assigns above its derived values: the ones -D may override."""
    text = (CASE_DIR / "params.scad").read_text(encoding="utf-8").split(DERIVED_MARK)[0]
    return set(re.findall(r"^(\$?[A-Za-z_][A-Za-z0-9_]*)\s*=", text, flags=re.MULTILINE))


def parse_overrides(items: list[str]) -> list[str]:
    """Check `name=value` items against params.scad; bare words become strings (fastener=insert)."""
    known = known_parameters()
    out = []
    for item in items:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not _NAME.match(name) or not value:
            raise BuildError(f"-D {item!r}: expected name=value, e.g. -D clearance=0.5")
        if name not in known:
            raise BuildError(
                f"-D {item!r}: unknown parameter {name!r} (the settable ones are at the top of"
                " case/params.scad; derived values follow from them)"
            )
        if not _LITERAL.match(value):
            value = json.dumps(value)
        out.append(f"{name}={value}")
    return out


def parse_echoes(stderr: str) -> dict[str, Any]:
    """REPORT and POSE lines that the .scad files echo, as Python values."""
    found: dict[str, Any] = {"report": {}, "poses": {}}
    for line in stderr.splitlines():
        if not line.startswith('ECHO: "REPORT"') and not line.startswith('ECHO: "POSE"'):
            continue
        try:
            values = json.loads("[" + line.removeprefix("ECHO: ") + "]")
        except json.JSONDecodeError as exc:
            raise BuildError(f"cannot read OpenSCAD output line {line!r}: {exc}") from exc
        if values[0] == "REPORT":
            found["report"].update({k: v for k, v in values[1]})
        else:
            found["poses"][values[1]] = values[2]
    return found


def openscad_errors(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.startswith(("ERROR", "WARNING"))]
    return "\n".join(lines) or stderr.strip()[-2000:]


def render_part(part: str, out_dir: Path, defines: list[str]) -> dict[str, Any]:
    """Render one part to out_dir/<part>.stl; returns what it echoed."""
    stl = out_dir / f"{part}.stl"
    cmd = ["openscad", "-o", str(stl)]
    for d in defines:
        cmd += ["-D", d]
    cmd.append(str(CASE_DIR / f"{part}.scad"))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S)
    has_error = any(ln.startswith("ERROR") for ln in proc.stderr.splitlines())
    if proc.returncode != 0 or has_error or not stl.is_file() or stl.stat().st_size == 0:
        stl.unlink(missing_ok=True)
        raise BuildError(f"{part}: OpenSCAD failed\n{openscad_errors(proc.stderr)}")
    return parse_echoes(proc.stderr)


def render_view(png: Path, camera: str, explode: int, defines: list[str], size: str) -> None:
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", "openscad", "-o", str(png)]
    cmd += [f"--imgsize={size}", f"--camera={camera}", "--autocenter", "--viewall"]
    cmd += ["--colorscheme=Tomorrow", "-D", f"explode={explode}"]
    for d in defines:
        cmd += ["-D", d]
    cmd.append(str(CASE_DIR / "assembly.scad"))
    for _attempt in range(2):  # xvfb-run -a can lose a race for a display number
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RENDER_TIMEOUT_S)
        if proc.returncode == 0 and png.is_file() and png.stat().st_size > 0:
            return
    raise BuildError(f"preview: OpenSCAD failed\n{openscad_errors(proc.stderr)}")


def render_preview(path: Path, defines: list[str]) -> None:
    """Front view and an exploded back view of the assembly, side by side in one PNG."""
    if shutil.which("xvfb-run") is None:
        raise BuildError("preview needs xvfb-run: apt-get install xvfb xauth (or use --no-preview)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        panels = []
        for i, (camera, explode) in enumerate(VIEWS):
            png = Path(tmp) / f"view{i}.png"
            render_view(png, camera, explode, defines, "1000,900")
            panels.append(_trimmed(Image.open(png).convert("RGB")))
    width = sum(p.width for p in panels) + MARGIN * (len(panels) + 1)
    sheet = Image.new("RGB", (width, PANEL_HEIGHT + 2 * MARGIN), panels[0].getpixel((0, 0)))
    x = MARGIN
    for panel in panels:
        sheet.paste(panel, (x, MARGIN))
        x += panel.width + MARGIN
    sheet.save(path, optimize=True)


def _trimmed(img: Image.Image) -> Image.Image:
    """The picture cropped to what differs from its background, scaled to PANEL_HEIGHT."""
    diff = ImageChops.difference(img, Image.new("RGB", img.size, img.getpixel((0, 0))))
    box = diff.convert("L").point(lambda v: 255 if v > 8 else 0).getbbox() or (0, 0, *img.size)
    img = img.crop(box)
    return img.resize((max(1, round(img.width * PANEL_HEIGHT / img.height)), PANEL_HEIGHT))


def build(out_dir: Path, defines: list[str], parts: tuple[str, ...], jobs: int) -> dict[str, Any]:
    """Render `parts` in parallel; write out_dir/case.json; return its content."""
    if shutil.which("openscad") is None:
        raise BuildError("openscad not found: apt-get install openscad")
    out_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {p: pool.submit(render_part, p, out_dir, defines) for p in parts}
        errors = []
        results: dict[str, dict[str, Any]] = {}
        for part, fut in futures.items():
            try:
                results[part] = fut.result()
            except BuildError as exc:
                errors.append(str(exc))
    if errors:
        raise BuildError("\n".join(errors))
    summary: dict[str, Any] = {"overrides": defines, "parameters": {}, "poses": {}, "parts": {}}
    for part in parts:
        summary["parameters"].update(results[part]["report"])
        summary["poses"].update(results[part]["poses"])
        summary["parts"][part] = f"{part}.stl"
    (out_dir / "case.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=CASE_DIR / "out", help="output folder")
    ap.add_argument(
        "-D",
        dest="defines",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameter of case/params.scad (repeatable)",
    )
    ap.add_argument("--preview", type=Path, help="PNG preview path (default OUT/preview.png)")
    ap.add_argument("--no-preview", action="store_true", help="skip the PNG preview")
    ap.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of parts")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel renders")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    try:
        unknown = [p for p in parts if p not in PARTS]
        if unknown or not parts:
            raise BuildError(f"--parts {args.parts!r}: choose from {', '.join(PARTS)}")
        defines = parse_overrides(args.defines)
        summary = build(args.out, defines, parts, min(args.jobs, len(parts)))
        if not args.no_preview:
            preview = args.preview or args.out / "preview.png"
            render_preview(preview, defines)
            print(f"preview: {preview}")
    except BuildError as exc:
        print(f"case build failed: {exc}", file=sys.stderr)
        return 2 if str(exc).startswith(("-D ", "--parts")) else 1
    for part, name in summary["parts"].items():
        print(f"{part}: {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

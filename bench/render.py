"""Renderer benchmark: speed, 8-bit picture quality and peak memory against two baselines.

Run from the repository root: ``.venv/bin/python bench/render.py [--runs N] [--no-write]``.
Generates photo-like JPEGs (smooth gradients, shapes, sensor-like noise, quality 80) in memory,
times renderer.imaging + renderer.bmp and both baselines of bench/baseline.py (the original
frame's real conversion, Pillow's fixed web palette, and the adaptive median-cut palette its
README describes) interleaved in the same run, and prints a Markdown section with medians,
ratios against each baseline and whether each target is met. Ratios use CPU time (what a busy
server pays, steady even when other work shares the cores); wall time is shown beside it. Peak
memory is measured in fresh subprocesses. Unless ``--no-write``, the section replaces
"## Renderer" in docs/benchmarks.md, leaving the rest of the file as it is.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import PIL  # noqa: E402
from baseline import ADAPTIVE, BASELINES, ORIGINAL  # noqa: E402
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps  # noqa: E402

from renderer.bmp import encode, to_panel  # noqa: E402
from renderer.imaging import FITS, render  # noqa: E402

INPUTS = {"preview 1440×1080": (1440, 1080), "preview 1080×1440": (1080, 1440)}
PHOTO = ("photo 4032×3024", (4032, 3024))
RSS_PHOTO = (6000, 4000)
SECTION = "## Renderer"
DOC = ROOT / "docs" / "benchmarks.md"
MIB = 1024 * 1024


@dataclass(frozen=True)
class Profile:
    fit: str
    caption: str | None = None


def photo_like(width: int, height: int, seed: int = 7, quality: int = 80) -> bytes:
    """A JPEG that compresses like a photo: sky gradient, hills, objects, texture and noise."""
    rnd = random.Random(seed)
    sw, sh = max(width // 4, 16), max(height // 4, 16)
    sky = Image.linear_gradient("L").resize((sw, sh))
    base = Image.merge(
        "RGB",
        [sky.point(lambda v, a=a, k=k: a + v * k) for a, k in ((60, 0.3), (110, 0.3), (200, -0.5))],
    )
    draw = ImageDraw.Draw(base)
    hills = [(0, 0.6), (0.3, 0.45), (0.7, 0.55), (1, 0.5), (1, 1), (0, 1)]
    draw.polygon([(x * sw, y * sh) for x, y in hills], fill=(70, 110, 50))
    for _ in range(30):
        x, y, r = rnd.uniform(0, sw), rnd.uniform(0, sh), rnd.uniform(sw * 0.02, sw * 0.15)
        colour = tuple(rnd.randrange(256) for _ in range(3))
        shape = draw.ellipse if rnd.random() < 0.5 else draw.rectangle
        shape([x - r, y - r * 0.6, x + r * 0.8, y + r], fill=colour)
    # Mottled texture (foliage, fabric) at a middle frequency, then fine sensor noise.
    mottle = Image.effect_noise((sw // 2, sh // 2), 20).resize((sw, sh), Image.Resampling.BICUBIC)
    base = ImageChops.add(base, Image.merge("RGB", [mottle] * 3), 1.0, -128)
    base = base.filter(ImageFilter.GaussianBlur(1.2)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    grain = Image.effect_noise((width, height), 8)
    img = ImageChops.add(base, Image.merge("RGB", [grain] * 3), 1.0, -128)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()


def ours(data: bytes, fit: str, fmt: str) -> bytes:
    return encode(render(data, "image/jpeg", Profile(fit)), fmt)


class Timing(NamedTuple):
    input: str
    pipeline: str
    cpu_ms: float  # median CPU time: what a busy server pays, whatever else the machine runs
    wall_ms: float  # median wall-clock time
    vs_original: float  # the original frame's CPU time / this CPU time
    vs_adaptive: float  # the adaptive median-cut pipeline's CPU time / this CPU time


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(CPU ms, wall ms) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


def speed(inputs: dict[str, bytes], runs: int) -> list[Timing]:
    """Median timings per input and pipeline; every pipeline runs once per round, interleaved."""
    rows = []
    for name, data in inputs.items():
        pipelines: dict[str, Callable[[], object]] = {
            key: partial(fn, data) for key, fn in BASELINES.items()
        }
        for fmt in ("bmp8", "bmp16"):
            for fit in FITS:
                pipelines[f"{fmt} {fit}"] = partial(ours, data, fit, fmt)
        samples: dict[str, list[tuple[float, float]]] = {key: [] for key in pipelines}
        for _ in range(runs):
            for key, fn in pipelines.items():
                samples[key].append(timed(fn))
        cpu = {key: statistics.median(c for c, _ in v) for key, v in samples.items()}
        wall = {key: statistics.median(w for _, w in v) for key, v in samples.items()}
        for key in pipelines:
            vs = (cpu[ORIGINAL] / cpu[key], cpu[ADAPTIVE] / cpu[key])
            rows.append(Timing(name, key, cpu[key], wall[key], *vs))
    return rows


def psnr(a: Image.Image, b: Image.Image) -> float:
    hist = ImageChops.difference(a, b).histogram()
    mse = sum(n * (i % 256) ** 2 for i, n in enumerate(hist)) / (a.width * a.height * 3)
    return 99.0 if mse == 0 else 10 * math.log10(255**2 / mse)


def seen(bmp: bytes) -> Image.Image:
    """What a viewer sees of a BMP on the panel from a little way off: RGB565, σ=1 blur."""
    return to_panel(Image.open(io.BytesIO(bmp)).convert("RGB")).filter(ImageFilter.GaussianBlur(1))


QUALITY = (ORIGINAL, ADAPTIVE, "bmp8 contain", "bmp16 contain")


def quality(inputs: dict[str, bytes]) -> dict[str, dict[str, float]]:
    """{input: {pipeline: blurred PSNR}} for the contain fit, against the source."""
    result = {}
    for name, data in inputs.items():
        full = Image.open(io.BytesIO(data)).convert("RGB")
        source = ImageOps.pad(full, (480, 320), Image.Resampling.LANCZOS, color=(0, 0, 0))
        ref = to_panel(source).filter(ImageFilter.GaussianBlur(1))
        made = {
            **{key: fn(data) for key, fn in BASELINES.items()},
            "bmp8 contain": ours(data, "contain", "bmp8"),
            "bmp16 contain": ours(data, "contain", "bmp16"),
        }
        result[name] = {key: psnr(seen(made[key]), ref) for key in QUALITY}
    return result


_CHILD = """
import json, resource, sys
sys.path[:0] = sys.argv[3:]
from PIL import Image
import renderer.imaging, renderer.bmp, baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
data = open(sys.argv[1], "rb").read()
if sys.argv[2] in ("original", "adaptive"):
    out = getattr(baseline, sys.argv[2] + "_bmp")(data)
else:
    class P: fit = "contain"; caption = None
    img = renderer.imaging.render(data, "image/jpeg", P())
    out = renderer.bmp.encode(img, sys.argv[2])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"imports_kib": before, "peak_kib": peak, "bytes": len(out)}))
"""
MEMORY_NAMES = {"bmp8": "bmp8", "bmp16": "bmp16", "original": ORIGINAL, "adaptive": ADAPTIVE}


def memory(path: Path) -> dict[str, dict[str, float]]:
    """Peak RSS (MiB) of one render in a fresh interpreter, and what imports alone cost.

    Linux hands a child its parent's peak RSS across fork and exec, so this runs while this
    process is still small, and the big test photo is made by a child of its own.
    """
    make = [sys.executable, __file__, "--make-photo", str(path)]
    subprocess.run(make, check=True)
    result = {}
    for mode in MEMORY_NAMES:
        args = [sys.executable, "-c", _CHILD, str(path), mode, str(ROOT), str(ROOT / "bench")]
        out = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
        result[mode] = {"imports": out["imports_kib"] / 1024, "peak": out["peak_kib"] / 1024}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="rounds per pipeline (median taken)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--make-photo", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make_photo:
        args.make_photo.write_bytes(photo_like(*RSS_PHOTO))
        return
    with tempfile.TemporaryDirectory() as tmp:
        mem = memory(Path(tmp) / "photo.jpg")
    print(f"Generating test JPEGs (quality 80); {args.runs} rounds per pipeline…", file=sys.stderr)
    inputs = {name: photo_like(*size) for name, size in INPUTS.items()}
    photo = {PHOTO[0]: photo_like(*PHOTO[1])}
    speed_rows = speed(inputs, args.runs) + speed(photo, max(3, args.runs // 2))
    quality_rows = quality({**inputs, **photo})
    text = report(speed_rows, quality_rows, mem, args.runs)
    print(text)
    if not args.no_write:
        write_section(text)


def write_section(text: str, path: Path = DOC) -> None:
    """Replace this benchmark's section of the file, keeping every other one."""
    old = path.read_text()
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if not pattern.search(old):
        raise SystemExit(f"bench: no {SECTION!r} section in {path}")
    new = pattern.sub(lambda _: text.rstrip("\n") + "\n\n", old, count=1)
    path.write_text(new.rstrip("\n") + "\n")


def side_by_side(speed_rows: list[Timing], quality_rows: dict[str, dict[str, float]]) -> list[str]:
    """The two baselines and the renderer's contain fit: speed and quality in one table."""
    lines = [
        "| input | pipeline | CPU ms | × vs original | × vs adaptive | blurred PSNR |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for t in speed_rows:
        if t.pipeline in QUALITY:
            db = quality_rows[t.input][t.pipeline]
            lines.append(
                f"| {t.input} | {t.pipeline} | {t.cpu_ms:.1f} | {t.vs_original:.1f}× "
                f"| {t.vs_adaptive:.1f}× | {db:.2f} dB |"
            )
    return lines


def all_rows(speed_rows: list[Timing]) -> list[str]:
    lines = [
        "| input | pipeline | CPU ms | × vs original | × vs adaptive | wall ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for t in speed_rows:
        lines.append(
            f"| {t.input} | {t.pipeline} | {t.cpu_ms:.1f} | {t.vs_original:.1f}× "
            f"| {t.vs_adaptive:.1f}× | {t.wall_ms:.1f} |"
        )
    return lines


def memory_rows(mem: dict[str, dict[str, float]]) -> list[str]:
    lines = ["| pipeline | after imports | peak | peak − imports |", "|---|---:|---:|---:|"]
    for mode, m in mem.items():
        grown = m["peak"] - m["imports"]
        lines.append(
            f"| {MEMORY_NAMES[mode]} | {m['imports']:.1f} MiB | {m['peak']:.1f} MiB "
            f"| {grown:.1f} MiB |"
        )
    return lines


INTRO = """
What it measures: turning one JPEG into the 480×320 file a frame downloads
(`renderer.imaging.render` followed by `renderer.bmp.encode`), for both profile formats and every
fit, against two baselines from `bench/baseline.py`, each named for what it is:

- **original frame: Pillow web palette, Floyd–Steinberg** — what the original frame's server
  really ran: full decode → `ImageOps.pad` to 480×320 with black →
  `convert("P", colors=256, dither=FLOYDSTEINBERG)`, which is Pillow's fixed *web* palette
  (216 colours, the same for every picture) → BMP saved by Pillow.
- **adaptive median-cut 256 colours, Floyd–Steinberg** — what its README describes: the same
  steps with a 256-colour palette adapted to the picture (Pillow's median cut) instead.

The inputs are generated photo-like JPEGs (sky gradient, hills, shapes, mottled texture, fine
grain; quality 80): two Immich-preview-sized ones and a 12 MP camera original. Every pipeline runs
once per round, interleaved; medians. Machine: 2 shared cores with other jobs running, so the
ratios use each pipeline's CPU time; wall time is shown beside it. The quality figure is the PSNR,
after a σ=1 Gaussian blur (viewing distance), of what the RGB565 panel shows against the source
padded to 480×320 with Lanczos and reduced to RGB565.
"""
OUTRO = """
Why it is faster: the JPEG decoder is asked for the smallest 1/2, 1/4 or 1/8 scale that still covers
the target (a 4032×3024 photo decodes at 504×378, a 6000×4000 one at 750×500, hence the flat memory
use), the palette comes from a fast octree instead of median cut, and the blurred background is
blurred at 60×40. The original frame's fixed web palette needs no palette search at all, so against
it bmp8's gain is mostly the smaller decode; median cut is what makes the adaptive pipeline slow.
Why the 8-bit output is better than both: colours are reduced to what the RGB565 panel can show
before the palette is built, every palette entry is a colour the panel reproduces exactly, and the
dithering therefore spreads the error the viewer really sees; the web palette has only 6 levels
per channel, so its dithering noise is coarse.

The targets are set on the landscape preview. The portrait preview's ratios are lower because its
baselines are cheaper (half of the padded picture is black bars, which cost the palette search and
the dithering little), while cover and smart fill the whole frame.

Cache-hit throughput and how renders scale from one worker process to two are measured on the
running HTTP service: see "## Renderer service" below.
"""


def report(
    speed_rows: list[Timing],
    quality_rows: dict[str, dict[str, float]],
    mem: dict[str, dict[str, float]],
    runs: int,
) -> str:
    w, h = RSS_PHOTO
    head = INTRO.strip()
    measured = (
        f"Measured {date.today().isoformat()} with `.venv/bin/python bench/render.py --runs {runs}`"
        f" (Python {sys.version.split()[0]}, Pillow {PIL.__version__}, {os.cpu_count()} CPU "
        f"cores, load average {os.getloadavg()[0]:.2f} at the end)."
    )
    parts = [
        f"{SECTION}\n\n{head}",
        measured,
        "Speed and quality side by side (contain fit; the ratios are the baseline's CPU time "
        "over this pipeline's; blurred PSNR: σ=1, RGB565 panel, against the source padded "
        "with Lanczos):",
        "\n".join(side_by_side(speed_rows, quality_rows)),
        "Every fit, CPU and wall time:",
        "\n".join(all_rows(speed_rows)),
        f"Peak RSS rendering a {w}×{h} JPEG (contain), each in a fresh interpreter:",
        "\n".join(memory_rows(mem)),
        "Targets:",
        "\n".join(f"- {line}" for line in targets(speed_rows, quality_rows, mem)),
        OUTRO.strip(),
    ]
    return "\n\n".join(parts) + "\n"


def targets(
    speed_rows: list[Timing],
    quality_rows: dict[str, dict[str, float]],
    mem: dict[str, dict[str, float]],
) -> list[str]:
    name = next(iter(INPUTS))
    rows = {t.pipeline: t for t in speed_rows if t.input == name}
    q = quality_rows[name]
    peak = max(mem["bmp8"]["peak"], mem["bmp16"]["peak"])

    def verdict(ok: bool) -> str:
        return "met" if ok else "**not met**"

    def slowest(fmt: str, attr: str) -> float:
        return min(float(getattr(rows[f"{fmt} {fit}"], attr)) for fit in FITS)

    a8, o8 = slowest("bmp8", "vs_adaptive"), slowest("bmp8", "vs_original")
    a16, o16 = slowest("bmp16", "vs_adaptive"), slowest("bmp16", "vs_original")
    p8, po, pa = q["bmp8 contain"], q[ORIGINAL], q[ADAPTIVE]
    w, h = RSS_PHOTO
    return [
        f"bmp8 of the {name} ≥ 5× faster than the adaptive median-cut pipeline: slowest fit "
        f"{a8:.1f}× in CPU time — {verdict(a8 >= 5)}",
        f"bmp8 of the {name} no slower than the original frame's web-palette conversion: "
        f"slowest fit {o8:.1f}× in CPU time — {verdict(o8 >= 1)}",
        f"bmp8 blurred PSNR ≥ both baselines': {p8:.2f} vs {po:.2f} (original frame) and "
        f"{pa:.2f} dB (adaptive) — {verdict(p8 >= max(po, pa))}",
        f"bmp16 of the {name} ≥ 2× faster than the adaptive median-cut pipeline: slowest fit "
        f"{a16:.1f}× in CPU time — {verdict(a16 >= 2)}; against the original frame {o16:.1f}×",
        f"peak RSS rendering a {w}×{h} JPEG ≤ 80 MiB: {peak:.1f} MiB — {verdict(peak <= 80)}",
    ]


if __name__ == "__main__":
    main()

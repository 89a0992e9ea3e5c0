"""Renderer benchmark: speed, 8-bit picture quality and peak memory against the original pipeline.

Run from the repository root: ``.venv/bin/python bench/render.py [--runs N]``. Generates
photo-like JPEGs (smooth gradients, shapes, sensor-like noise, quality 80) in memory, times
renderer.imaging + renderer.bmp and the original pipeline (bench/baseline.py) interleaved in the
same run, and prints Markdown tables with medians, ratios and whether each target is met.
Ratios use CPU time (what a busy server pays, steady even when other work shares the cores);
wall time is shown beside it. Peak memory is measured in fresh subprocesses. Writes nothing but a
temporary file.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
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
from baseline import baseline_bmp  # noqa: E402
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps  # noqa: E402

from renderer.bmp import encode, to_panel  # noqa: E402
from renderer.imaging import FITS, render  # noqa: E402

INPUTS = {"preview 1440×1080": (1440, 1080), "preview 1080×1440": (1080, 1440)}
PHOTO = ("photo 4032×3024", (4032, 3024))
RSS_PHOTO = (6000, 4000)
BASELINE = "baseline (8-bit)"
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
    speedup: float  # baseline CPU time / this CPU time
    wall_speedup: float


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(CPU ms, wall ms) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000


def speed(inputs: dict[str, bytes], runs: int) -> list[Timing]:
    """Median timings per input and pipeline; every pipeline runs once per round, interleaved."""
    rows = []
    for name, data in inputs.items():
        pipelines: dict[str, Callable[[], object]] = {BASELINE: partial(baseline_bmp, data)}
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
            ratio, wall_ratio = cpu[BASELINE] / cpu[key], wall[BASELINE] / wall[key]
            rows.append(Timing(name, key, cpu[key], wall[key], ratio, wall_ratio))
    return rows


def psnr(a: Image.Image, b: Image.Image) -> float:
    hist = ImageChops.difference(a, b).histogram()
    mse = sum(n * (i % 256) ** 2 for i, n in enumerate(hist)) / (a.width * a.height * 3)
    return 99.0 if mse == 0 else 10 * math.log10(255**2 / mse)


def seen(bmp: bytes) -> Image.Image:
    """What a viewer sees of a BMP on the panel from a little way off: RGB565, σ=1 blur."""
    return to_panel(Image.open(io.BytesIO(bmp)).convert("RGB")).filter(ImageFilter.GaussianBlur(1))


def quality(inputs: dict[str, bytes]) -> list[tuple[str, float, float, float]]:
    """(input, baseline PSNR, bmp8 PSNR, bmp16 PSNR) for the contain fit, against the source."""
    rows = []
    for name, data in inputs.items():
        full = Image.open(io.BytesIO(data)).convert("RGB")
        source = ImageOps.pad(full, (480, 320), Image.Resampling.LANCZOS, color=(0, 0, 0))
        ref = to_panel(source).filter(ImageFilter.GaussianBlur(1))
        rows.append(
            (
                name,
                psnr(seen(baseline_bmp(data)), ref),
                psnr(seen(ours(data, "contain", "bmp8")), ref),
                psnr(seen(ours(data, "contain", "bmp16")), ref),
            )
        )
    return rows


_CHILD = """
import json, resource, sys
sys.path[:0] = sys.argv[3:]
from PIL import Image
import renderer.imaging, renderer.bmp, baseline
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
data = open(sys.argv[1], "rb").read()
if sys.argv[2] == "baseline":
    out = baseline.baseline_bmp(data)
else:
    class P: fit = "contain"; caption = None
    img = renderer.imaging.render(data, "image/jpeg", P())
    out = renderer.bmp.encode(img, sys.argv[2])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"imports_kib": before, "peak_kib": peak, "bytes": len(out)}))
"""


def memory(path: Path) -> dict[str, dict[str, float]]:
    """Peak RSS (MiB) of one render in a fresh interpreter, and what imports alone cost.

    Linux hands a child its parent's peak RSS across fork and exec, so this runs while this
    process is still small, and the big test photo is made by a child of its own.
    """
    make = [sys.executable, __file__, "--make-photo", str(path)]
    subprocess.run(make, check=True)
    result = {}
    for mode in ("bmp8", "bmp16", "baseline"):
        args = [sys.executable, "-c", _CHILD, str(path), mode, str(ROOT), str(ROOT / "bench")]
        out = json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)
        result[mode] = {"imports": out["imports_kib"] / 1024, "peak": out["peak_kib"] / 1024}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="rounds per pipeline (median taken)")
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
    report(speed_rows, quality_rows, mem, args.runs)


def report(
    speed_rows: list[Timing],
    quality_rows: list[tuple[str, float, float, float]],
    mem: dict[str, dict[str, float]],
    runs: int,
) -> None:
    print(
        f"Measured {date.today().isoformat()} with `.venv/bin/python bench/render.py --runs {runs}`"
    )
    print(f"(Python {sys.version.split()[0]}, Pillow {PIL.__version__}).\n")
    print("| input | pipeline | CPU ms | speed-up | wall ms | wall speed-up |")
    print("|---|---|---:|---:|---:|---:|")
    for t in speed_rows:
        print(
            f"| {t.input} | {t.pipeline} | {t.cpu_ms:.1f} | {t.speedup:.1f}× "
            f"| {t.wall_ms:.1f} | {t.wall_speedup:.1f}× |"
        )
    print(
        "\nBlurred PSNR (σ=1, RGB565 panel), contain fit, against the source padded with Lanczos:\n"
    )
    print("| input | baseline 8-bit | bmp8 | bmp16 |")
    print("|---|---:|---:|---:|")
    for name, base, eight, sixteen in quality_rows:
        print(f"| {name} | {base:.2f} dB | {eight:.2f} dB | {sixteen:.2f} dB |")
    w, h = RSS_PHOTO
    print(f"\nPeak RSS rendering a {w}×{h} JPEG (contain), each in a fresh interpreter:\n")
    print("| pipeline | after imports | peak | peak − imports |")
    print("|---|---:|---:|---:|")
    for mode, m in mem.items():
        grown = m["peak"] - m["imports"]
        print(f"| {mode} | {m['imports']:.1f} MiB | {m['peak']:.1f} MiB | {grown:.1f} MiB |")
    print("\nTargets:\n")
    for line in targets(speed_rows, quality_rows, mem):
        print(f"- {line}")


def targets(
    speed_rows: list[Timing],
    quality_rows: list[tuple[str, float, float, float]],
    mem: dict[str, dict[str, float]],
) -> list[str]:
    name = next(iter(INPUTS))
    ratio = {t.pipeline: t.speedup for t in speed_rows if t.input == name}
    q = next(row for row in quality_rows if row[0] == name)
    peak = max(mem["bmp8"]["peak"], mem["bmp16"]["peak"])

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    slow8 = min(ratio[f"bmp8 {fit}"] for fit in FITS)
    slow16 = min(ratio[f"bmp16 {fit}"] for fit in FITS)
    w, h = RSS_PHOTO
    return [
        f"bmp8 of the {name} ≥ 5× faster than baseline: slowest fit {slow8:.1f}× in CPU time "
        f"— {verdict(slow8 >= 5)}",
        f"bmp8 blurred PSNR ≥ baseline's: {q[2]:.2f} vs {q[1]:.2f} dB — {verdict(q[2] >= q[1])}",
        f"bmp16 of the {name} ≥ 2× faster than baseline: slowest fit {slow16:.1f}× in CPU time "
        f"— {verdict(slow16 >= 2)}",
        f"peak RSS rendering a {w}×{h} JPEG ≤ 80 MiB: {peak:.1f} MiB — {verdict(peak <= 80)}",
    ]


if __name__ == "__main__":
    main()

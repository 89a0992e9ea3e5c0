"""Sample photos for the demo, drawn with Pillow: skies, hills, a sun or moon, in landscape and
portrait. Deterministic (seeded), so a second run makes the same files. Does file I/O.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SKIES = [
    ((255, 170, 90), (90, 60, 140)),  # dusk
    ((120, 190, 255), (230, 245, 255)),  # noon
    ((20, 30, 80), (90, 60, 130)),  # night
    ((255, 120, 120), (255, 220, 150)),  # sunrise
    ((140, 210, 200), (250, 250, 230)),  # sea haze
]
LANDS = [(40, 90, 60), (70, 60, 50), (30, 60, 90), (110, 130, 60), (60, 40, 70)]


def _gradient(size: tuple[int, int], top: tuple[int, ...], bottom: tuple[int, ...]) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size)
    draw = ImageDraw.Draw(img)
    for y in range(h):
        t = y / max(1, h - 1)
        colour = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.line([(0, y), (w, y)], fill=colour)
    return img


def photo(seed: int, portrait: bool) -> Image.Image:
    rnd = random.Random(seed)
    size = (800, 1200) if portrait else (1200, 800)
    w, h = size
    top, bottom = SKIES[seed % len(SKIES)]
    img = _gradient(size, top, bottom)
    draw = ImageDraw.Draw(img)
    r = rnd.randint(w // 14, w // 8)
    cx, cy = rnd.randint(r, w - r), rnd.randint(r, h // 2)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(255, 240, 200))
    for layer in range(3):
        base = h * (0.55 + 0.12 * layer)
        shade = tuple(max(0, c - 25 * layer) for c in LANDS[(seed + layer) % len(LANDS)])
        points: list[tuple[float, float]] = [(0, h)]
        for x in range(0, w + 60, 60):
            points.append((x, base + rnd.randint(-h // 10, h // 14)))
        points.append((w, h))
        draw.polygon(points, fill=shade)
    return img.filter(ImageFilter.SMOOTH)


def generate(folder: Path, count: int = 12) -> list[Path]:
    """Write `count` JPEGs into `folder` (kept when they exist); returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"sample-{i:02d}.jpg"
        if not path.exists():
            photo(i, portrait=i % 3 == 2).save(path, "JPEG", quality=88)
        paths.append(path)
    return paths

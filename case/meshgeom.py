"""Measurements on rendered case meshes: plane sections, 2D rays, bodies and printability.

Pure functions (numpy and trimesh only, no I/O). A section is an array of 2D segments (n, 2, 2)
in the two axes other than the cutting one, in order: z -> (x, y), y -> (x, z), x -> (y, z).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import trimesh
from trimesh import intersections

AXES = {"x": (0, [1, 2]), "y": (1, [0, 2]), "z": (2, [0, 1])}
Point = Sequence[float] | np.ndarray
# trimesh leaves this one unannotated: (mesh, plane normal, plane origin) -> (n, 2, 3) segments
_mesh_plane: Callable[..., Any] = intersections.mesh_plane


def section(mesh: trimesh.Trimesh, axis: str, value: float) -> np.ndarray:
    """Cut `mesh` with the plane `axis` = value."""
    i, keep = AXES[axis]
    normal, origin = np.zeros(3), np.zeros(3)
    normal[i], origin[i] = 1.0, value
    segs = np.asarray(_mesh_plane(mesh, normal, origin), dtype=np.float64)
    return segs.reshape(-1, 2, 3)[:, :, keep]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out: np.ndarray = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    return out


def ray_hits(segs: np.ndarray, origin: Point, direction: Point) -> np.ndarray:
    """Sorted distances at which a 2D ray crosses a section's outline."""
    o, d = np.asarray(origin, float), np.asarray(direction, float)
    d = d / np.linalg.norm(d)
    a, e = segs[:, 0], segs[:, 1] - segs[:, 0]
    denom = _cross(np.broadcast_to(d, e.shape), e)
    ok = np.abs(denom) > 1e-12
    ao = a[ok] - o
    t = _cross(ao, e[ok]) / denom[ok]
    s = _cross(ao, np.broadcast_to(d, ao.shape)) / denom[ok]
    return np.unique(np.round(t[(t > 1e-9) & (s >= 0) & (s <= 1)], 6))


def inside(segs: np.ndarray, points: Point | Sequence[Point]) -> np.ndarray:
    """Which 2D points (one or many) lie inside the material of a section (even-odd rule)."""
    p = np.atleast_2d(np.asarray(points, float))[:, None, :]
    if len(segs) == 0:
        return np.zeros(len(p), bool)
    a, b = segs[None, :, 0], segs[None, :, 1]
    straddle = (a[..., 1] > p[..., 1]) != (b[..., 1] > p[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        x = a[..., 0] + (p[..., 1] - a[..., 1]) * (b[..., 0] - a[..., 0]) / (b[..., 1] - a[..., 1])
    return np.asarray((np.sum(straddle & (x > p[..., 0]), axis=1) % 2) == 1)


def opening(segs: np.ndarray, centre: Point) -> tuple[float, float, float, float]:
    """Extent (lo0, hi0, lo1, hi1) of the hole around `centre`, measured along both axes."""
    c = np.asarray(centre, float)
    reach = [ray_hits(segs, c, d) for d in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    far = [r[0] if len(r) else np.inf for r in reach]
    return c[0] - far[0], c[0] + far[1], c[1] - far[2], c[1] + far[3]


def grid(boxes: Sequence[Sequence[float]], step: float) -> np.ndarray:
    """Points on a `step` grid covering the union of boxes [x0, x1, y0, y1]."""
    out = []
    for x0, x1, y0, y1 in boxes:
        gx, gy = np.meshgrid(np.arange(x0, x1 + 1e-9, step), np.arange(y0, y1 + 1e-9, step))
        out.append(np.stack([gx.ravel(), gy.ravel()], 1))
    return np.concatenate(out)


def loop_count(segs: np.ndarray) -> int:
    """Number of closed outlines in a section (a solid with two holes has three)."""
    ends, index = np.unique(np.round(segs.reshape(-1, 2), 5), axis=0, return_inverse=True)
    return len(_groups(len(ends), index.reshape(-1, 2)))


def fit_circle(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and diameter of the circle that best fits 2D points (least squares)."""
    a = np.c_[2 * points, np.ones(len(points))]
    cx, cy, c = np.linalg.lstsq(a, (points**2).sum(1), rcond=None)[0]
    return np.array([cx, cy]), 2 * float(np.sqrt(c + cx**2 + cy**2))


def facing_normal(mesh: trimesh.Trimesh, direction: Point) -> np.ndarray:
    """Normal of the largest flat face (all its coplanar triangles) looking within 60 degrees
    of `direction`."""
    keys, inverse = np.unique(np.round(mesh.face_normals, 3), axis=0, return_inverse=True)
    area = np.bincount(inverse.ravel(), mesh.area_faces)
    candidates = np.flatnonzero(keys @ np.asarray(direction, float) > 0.5)
    faces = inverse.ravel() == candidates[np.argmax(area[candidates])]
    n = (mesh.face_normals[faces] * mesh.area_faces[faces, None]).sum(0)
    return np.asarray(n / np.linalg.norm(n))


def body_count(mesh: trimesh.Trimesh) -> int:
    """Number of separate pieces (vertex-connected)."""
    groups = _groups(len(mesh.vertices), mesh.edges_unique)
    used = set(np.unique(mesh.faces).tolist())
    return sum(1 for g in groups if used.intersection(g.tolist()))


def _groups(n: int, pairs: np.ndarray) -> list[np.ndarray]:
    parent = np.arange(n)
    pairs = np.asarray(pairs, int).reshape(-1, 2)
    while True:  # label propagation with pointer jumping: converges in a few dozen rounds
        low = np.minimum(parent[pairs[:, 0]], parent[pairs[:, 1]])
        before = parent.copy()
        np.minimum.at(parent, pairs[:, 0], low)
        np.minimum.at(parent, pairs[:, 1], low)
        parent = parent[parent]
        if np.array_equal(before, parent):
            break
    return [np.flatnonzero(parent == r) for r in np.unique(parent)]


def _in_triangles(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    d = [_cross(v - u, p[:, None] - u) for u, v in ((a, b), (b, c), (c, a))]
    pos = (d[0] >= 0) & (d[1] >= 0) & (d[2] >= 0)
    neg = (d[0] <= 0) & (d[1] <= 0) & (d[2] <= 0)
    return np.asarray(np.any(pos | neg, axis=1))


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.einsum("psk,sk->ps", p[:, None, :] - a[None], ab) / np.sum(ab * ab, 1)
    closest = a[None] + np.clip(t, 0, 1)[..., None] * ab[None]
    return np.asarray(np.linalg.norm(p[:, None, :] - closest, axis=2))


def ceiling_reach(mesh: trimesh.Trimesh, faces: np.ndarray) -> float:
    """How far a point of a flat downward-facing region lies from the nearest edge that has
    material below it: half the span of a bridge, the length of a cantilever."""
    tri = mesh.triangles[faces]
    z = float(tri[:, :, 2].mean())
    ids, counts = np.unique(mesh.faces_unique_edges[faces].ravel(), return_counts=True)
    edges = mesh.edges_unique[ids[counts == 1]]
    a, b = mesh.vertices[edges[:, 0], :2], mesh.vertices[edges[:, 1], :2]
    mid = (a + b) / 2
    perp = np.stack([a[:, 1] - b[:, 1], b[:, 0] - a[:, 0]], 1)
    perp /= np.linalg.norm(perp, axis=1)[:, None]
    outward = np.where(_in_triangles(mid + 0.05 * perp, tri[:, :, :2])[:, None], -perp, perp)
    supported = inside(section(mesh, "z", z - 0.05), mid + 0.1 * outward)
    if not supported.any():
        return float("inf")
    lo, hi = tri[:, :, :2].reshape(-1, 2).min(0), tri[:, :, :2].reshape(-1, 2).max(0)
    pts = grid([[lo[0], hi[0], lo[1], hi[1]]], 0.25)
    pts = np.concatenate([pts[_in_triangles(pts, tri[:, :, :2])], tri[:, :, :2].mean(1)])
    return float(_segment_distance(pts, a[supported], b[supported]).min(1).max())


def support_problems(mesh: trimesh.Trimesh, max_overhang: float, max_bridge: float) -> list[str]:
    """What a printer could not build without supports, with the mesh lying as given (z up)."""
    nz = mesh.face_normals[:, 2]
    above_bed = mesh.triangles[:, :, 2].min(axis=1) > 1e-3
    problems = []
    too_steep = nz < -np.sin(np.radians(max_overhang)) - 1e-3
    steep = np.flatnonzero(above_bed & too_steep & (nz > -0.9999))
    if len(steep):
        worst = np.degrees(np.arcsin(-nz[steep].min()))
        problems.append(f"{len(steep)} faces overhang up to {worst:.1f} degrees")
    flat = np.flatnonzero(above_bed & (nz <= -0.9999))
    local = {int(f): i for i, f in enumerate(flat)}
    pairs = [(local[a], local[b]) for a, b in mesh.face_adjacency if a in local and b in local]
    for group in _groups(len(flat), np.array(pairs, int)):
        reach = ceiling_reach(mesh, flat[group])
        if reach > max_bridge / 2 + 0.05:
            z = float(mesh.triangles[flat[group[0]]][0, 2])
            problems.append(f"flat overhang at z={z:.2f} lies {reach:.1f} mm from any support")
    return problems

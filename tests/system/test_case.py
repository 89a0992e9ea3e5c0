"""The printable case, measured on the meshes OpenSCAD renders.

Every part is one closed solid that lies flat on a 180 mm bed and prints without supports; the
standoffs sit on the board's holes, the window on the display's visible area, the openings on
USB-C and microSD, the light pipe over the sensor; the board keeps its clearance, walls their
thickness; the stand clips on and holds the frame at its angle; a parameter sweep stays
printable; a bad parameter stops the build by name. Board facts come from the vendored
geometry file, not from the case's own parameters.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import trimesh
from PIL import Image

from case.meshgeom import (
    body_count,
    facing_normal,
    fit_circle,
    grid,
    inside,
    loop_count,
    opening,
    ray_hits,
    section,
    support_problems,
)
from tests.kit import ROOT

BUILD = ROOT / "case" / "build.py"
BOARD = json.loads((ROOT / "tests" / "data" / "titano_pcb_geometry.json").read_text())
PARTS = ("front_shell", "backplate", "stand")
CLEAR = 0.3  # the board and glass keep at least this much room on every side
needs_openscad = pytest.mark.skipif(
    shutil.which("openscad") is None, reason="needs OpenSCAD: apt-get install openscad"
)


def part_xy(name: str) -> np.ndarray:
    return np.array(BOARD["parts_xy_rot"][name][:2], float)


def board_boxes(grow: float) -> list[list[float]]:
    """The board's outline (body between two taller rails) as boxes, grown by `grow`."""
    bx0, bx1, by0, by1 = BOARD["main_body"]
    y0, y1 = BOARD["outline_bbox"][2:]
    body = [bx0 - grow, bx1 + grow, by0 - grow, by1 + grow]
    return [body] + [
        [r0 - grow, r1 + grow, y0 - grow, y1 + grow] for r0, r1 in BOARD["side_rails_x"]
    ]


def run_build(out: Path, *defines: str, opts: tuple[str, ...] = ("--no-preview",)) -> Any:
    cmd = [sys.executable, str(BUILD), "--out", str(out), *opts]
    for d in defines:
        cmd += ["-D", d]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


class Case:
    """One build: meshes as printed, and placed back where they sit on the board."""

    def __init__(self, out: Path) -> None:
        self.info = json.loads((out / "case.json").read_text())
        self.p: dict[str, Any] = self.info["parameters"]
        self.printed = {name: trimesh.load_mesh(out / f"{name}.stl") for name in PARTS}

    @cached_property
    def placed(self) -> dict[str, trimesh.Trimesh]:
        poses = {n: np.linalg.inv(np.array(self.info["poses"][n], float)) for n in PARTS}
        return {n: m.copy().apply_transform(poses[n]) for n, m in self.printed.items()}


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> Case:
    """The default case, rendered once per run and shared by the pytest-xdist workers."""
    if shutil.which("openscad") is None:
        pytest.skip("needs OpenSCAD: apt-get install openscad")
    base = tmp_path_factory.getbasetemp()
    out = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "case-default"
    out.mkdir(exist_ok=True)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / "case.json").is_file():
            proc = run_build(out)
            assert proc.returncode == 0, proc.stderr
    return Case(out)


def side_gaps(segs: np.ndarray) -> tuple[list[float], list[float]]:
    """At the board's level: room between board edge and wall, and the wall's thickness, on rays
    from the board's centre to all four sides (rays through an opening are left out)."""
    x0, x1, y0, y1 = BOARD["outline_bbox"]
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    gaps, walls = [], []
    for axis, edges in ((0, (x0, x1)), (1, (y0, y1))):
        for along in np.linspace(*((y0, y1) if axis == 0 else (x0, x1)), 9)[1:-1]:
            for sign, edge in zip((-1, 1), edges, strict=True):
                origin = centre.copy()
                origin[1 - axis] = along + 0.0137
                d = np.zeros(2)
                d[axis] = sign
                hits = ray_hits(segs, origin, d)
                if len(hits) >= 2:
                    gaps.append(sign * (origin[axis] + sign * hits[0] - edge))
                    walls.append(hits[-1] - hits[-2])
    return gaps, walls


def check_printable(case: Case) -> None:
    for name, mesh in case.printed.items():
        assert mesh.is_watertight and mesh.is_winding_consistent, name
        assert mesh.volume > 1000 and body_count(mesh) == 1, name
        lo, hi = mesh.bounds
        assert abs(lo[2]) < 1e-3, f"{name} does not lie on the bed"
        assert (hi - lo)[:2].max() <= min(case.p["bed"]), f"{name} is {hi - lo} mm"
        on_bed = mesh.triangles[:, :, 2].max(axis=1) < 1e-3
        assert mesh.area_faces[on_bed].sum() > 300, f"{name} barely touches the bed"
        problems = support_problems(mesh, case.p["max_overhang"], case.p["max_bridge"])
        assert problems == [], f"{name}: {problems}"


@needs_openscad
def test_every_part_is_one_closed_solid_that_prints_flat_without_supports(case: Case) -> None:
    assert sorted(case.info["parts"]) == sorted(PARTS)
    check_printable(case)


def standoffs(shell: trimesh.Trimesh) -> list[tuple[np.ndarray, float, float]]:
    """Per board hole: centre and diameter of the standoff's screw hole, and the standoff's top."""
    found = []
    for hole in np.array(BOARD["mounting_holes_drill_3.0_pad_3.6"]):
        near = np.linalg.norm(shell.vertices[:, :2] - hole, axis=1) < 2.5
        top = float(shell.vertices[near, 2].max())  # the board rests here
        pts = section(shell, "z", top - 1.0).reshape(-1, 2)
        centre, diameter = fit_circle(pts[np.linalg.norm(pts - hole, axis=1) < 2.4])
        found.append((centre, diameter, top))
    return found


@needs_openscad
def test_standoffs_stand_on_the_mounting_holes(case: Case) -> None:
    holes = np.array(BOARD["mounting_holes_drill_3.0_pad_3.6"])
    for hole, (centre, diameter, top) in zip(
        holes, standoffs(case.placed["front_shell"]), strict=True
    ):
        assert np.linalg.norm(centre - hole) <= 0.2, f"standoff at {centre}, hole at {hole}"
        assert 2.3 <= diameter <= 2.8  # an M3 screw forms its thread in it
        assert top == pytest.approx(case.p["z_pcb_f"], abs=0.01)


@needs_openscad
def test_window_matches_the_visible_area(case: Case) -> None:
    shell, p = case.placed["front_shell"], case.p
    vis = np.array(BOARD["tft_visible_area_xxyy"])
    centre = [(vis[0] + vis[1]) / 2, (vis[2] + vis[3]) / 2]
    found = opening(section(shell, "z", (p["window_chamfer"] + p["front_t"]) / 2), centre)
    assert np.abs(np.array(found) - vis).max() <= 0.5, found
    face = opening(section(shell, "z", 0.05), centre)  # the chamfer only widens it
    assert face[0] <= vis[0] and face[1] >= vis[1] and face[2] <= vis[2] and face[3] >= vis[3]


@needs_openscad
def test_board_and_glass_keep_their_clearance(case: Case) -> None:
    p, shell, back = case.p, case.placed["front_shell"], case.placed["backplate"]
    g = np.array(BOARD["tft_glass_outline_xxyy"]) + np.array([-CLEAR, CLEAR, -CLEAR, CLEAR])
    glass, board = grid([g], 0.5), grid(board_boxes(CLEAR), 0.5)
    holes = np.array(BOARD["mounting_holes_drill_3.0_pad_3.6"])
    behind = board[
        np.min(np.linalg.norm(board[:, None] - holes, axis=2), 1) > p["tube_d"] / 2 + CLEAR
    ]
    zg, zf, zb, zp = p["z_glass"], p["z_pcb_f"], p["z_pcb_b"], p["z_parts"]
    checks = [(shell, z, glass) for z in (zg + 0.05, (zg + zf) / 2, zf - 0.05)]
    checks += [(shell, z, board) for z in (zf + 0.05, (zf + zb) / 2, zb - 0.05)]
    checks += [(m, z, behind) for m in (shell, back) for z in (zb + 0.05, (zb + zp) / 2, zp)]
    for mesh, z, pts in checks:
        hit = inside(section(mesh, "z", z), pts)
        assert not hit.any(), f"material at z={z:.2f} near {pts[hit][:3].tolist()}"
    gaps, _ = side_gaps(section(shell, "z", (zf + zb) / 2))
    assert len(gaps) > 20 and min(gaps) >= CLEAR, gaps


@needs_openscad
def test_walls_are_at_least_the_minimum(case: Case) -> None:
    p, shell, back = case.p, case.placed["front_shell"], case.placed["backplate"]
    walls = []
    for z in (p["front_t"] + 0.5, p["z_pcb_b"] + 1.0, p["z_rim"] - 0.5):
        walls += side_gaps(section(shell, "z", z))[1]
    # bezel beside the window (front plate) and backplate, away from holes and vents
    probes = [(shell, "y", y, x, -1.0) for y in (-5.0, 58.5) for x in (5, 20, 40, 60, 78)]
    probes += [(shell, "x", x, y, -1.0) for x in (-5.0, 85.0) for y in (10, 20, 45)]
    probes += [(back, "y", y, x, p["depth"] + 1) for y in (20.0, 57.0) for x in (5, 40, 76)]
    for mesh, axis, at, along, z0 in probes:
        hits = ray_hits(section(mesh, axis, at), [along + 0.0137, z0], [0, 1 if z0 < 0 else -1])
        walls.append(hits[1] - hits[0])
    assert len(walls) > 60 and min(walls) >= p["min_wall"] - 1e-6, min(walls)


@needs_openscad
def test_usb_c_and_microsd_openings_line_up_with_the_connectors(case: Case) -> None:
    p, shell = case.p, case.placed["front_shell"]
    lo, hi = shell.bounds
    left, right = section(shell, "x", lo[0] + 0.3), section(shell, "x", hi[0] - 0.3)
    for key, part in (("usb", "X5 "), ("sd", "X1 microSD")):
        x, y = part_xy(part)
        assert x < BOARD["main_body"][0] + 12  # it opens on the board's left (x0) edge
        z = p[key][2]
        assert p["z_pcb_b"] < z < p["z_pcb_b"] + 3.3  # on the back, just above the board
        y0, y1, z0, z1 = opening(left, [y, z])
        assert abs((y0 + y1) / 2 - y) <= 0.3 and abs((z0 + z1) / 2 - z) <= 0.3, (key, y0, y1)
        need = p[f"{key}_open"]
        assert y1 - y0 >= need[0] - 0.3 and z1 - z0 >= need[1] - 0.3, (key, y1 - y0, z1 - z0)
        assert inside(right, [y, z]).all(), f"{key}: the mirrored side must stay closed"
    assert p["z_pcb_b"] == pytest.approx(p["z_pcb_f"] + p["pcb_t"])


@needs_openscad
def test_light_pipe_hole_sits_over_the_light_sensor(case: Case) -> None:
    p, shell = case.p, case.placed["front_shell"]
    sensor = part_xy("U4 ALS-PT21")
    for z in (0.05, p["front_t"] / 2, p["lightpipe_len"] - 0.3):
        x0, x1, y0, y1 = opening(section(shell, "z", z), sensor)
        assert np.hypot((x0 + x1) / 2 - sensor[0], (y0 + y1) / 2 - sensor[1]) <= 0.2
        assert min(x1 - x0, y1 - y0) >= 1.85 and max(x1 - x0, y1 - y0) <= 2.35, (z, x1 - x0)
    assert p["lightpipe_len"] < p["z_pcb_f"] - 0.5  # the guide stops short of the board
    x0, x1, *_ = opening(section(shell, "z", (p["lightpipe_len"] + p["z_pcb_f"]) / 2), sensor)
    assert x1 - x0 > 3


@needs_openscad
def test_backplate_has_reset_access_and_closed_keyholes(case: Case) -> None:
    p, back = case.p, case.placed["backplate"]
    skin = section(back, "z", p["depth"] - p["back_t"] / 2)
    reset = part_xy("RESET EVQQ 6mm")
    x0, x1, y0, y1 = opening(skin, reset)
    assert np.hypot((x0 + x1) / 2 - reset[0], (y0 + y1) / 2 - reset[1]) <= 0.3
    assert min(x1 - x0, y1 - y0) >= 3.0
    pocket_h, boss_h = p["keyhole_pocket_h"], p["keyhole_boss_h"]
    pocket = section(back, "z", p["z_rim"] - pocket_h / 2)
    roof = section(back, "z", p["z_rim"] - (pocket_h + boss_h) / 2)
    for kx, ky in p["keyholes"]:
        ex0, ex1, *_ = opening(skin, [kx, ky - p["keyhole_slot"]])
        sx0, sx1, _, sy1 = opening(skin, [kx, ky])
        px0, px1, _, py1 = opening(pocket, [kx, ky])
        assert ex1 - ex0 >= 8.0  # an 8 mm screw head goes in ...
        assert 4.0 <= sx1 - sx0 <= 5.0 and sy1 - ky < 3  # ... slides down onto a 4 mm shank ...
        assert px1 - px0 >= 8.0 and py1 - ky >= 4.0  # ... and hangs in its pocket
        assert inside(roof, [kx, ky]).all()  # which is closed towards the electronics


@needs_openscad
def test_stand_clips_onto_the_backplate(case: Case) -> None:
    p, stand, back, shell = case.p, *(case.placed[n] for n in ("stand", "backplate", "front_shell"))
    lo, hi = stand.bounds
    pts = grid([[lo[0], hi[0], lo[1], hi[1]]], 0.5)
    for z in np.arange(-3.0, p["depth"] + 1.0, 0.7) + 0.013:
        mine = pts[inside(section(stand, "z", z), pts)]
        clash = inside(section(back, "z", z), mine) | inside(section(shell, "z", z), mine)
        assert not clash.any(), f"stand and frame overlap at z={z:.2f}: {mine[clash][:3]}"
    heads = section(stand, "z", p["z_rim"] - p["keyhole_pocket_h"] / 2)
    skin = section(back, "z", p["depth"] - p["back_t"] / 2)
    for kx, ky in p["keyholes"]:
        assert inside(heads, [kx, ky]).all()  # a peg hangs where a wall screw would
        hx0, *_ = opening(heads, [kx, ky])
        sx0, *_ = opening(skin, [kx, ky])
        assert hx0 < sx0 - 1.0  # its head reaches behind the skin: it cannot pull out
    side = section(stand, "x", (p["keyholes"][0][0] + p["keyholes"][1][0]) / 2 + 0.013)
    top, bottom = shell.bounds[1][1], shell.bounds[0][1]
    assert inside(side, [[top + 1.0, p["depth"] - 0.8]]).all()  # the hook is over the top edge
    assert inside(side, [[bottom - 1.5, p["depth"] / 2]]).all()  # the ledge under the bottom


@needs_openscad
def test_vents_low_and_high_stay_open_behind_the_stand(case: Case) -> None:
    p, back, stand = case.p, case.placed["backplate"], case.placed["stand"]
    bx0, bx1, by0, by1 = BOARD["main_body"]
    for y0, y1 in ((by0, by0 + 15), (by1 - 12, by1)):  # air in at the bottom, out at the top
        pts = grid([[bx0, bx1, y0, y1]], 0.25)
        vents = pts[~inside(section(back, "z", p["depth"] - p["back_t"] / 2), pts)]
        assert len(vents) * 0.25**2 >= 150, f"{len(vents) * 0.0625:.0f} mm² of vents at y {y0}"
        assert not inside(section(stand, "z", p["depth"] + 1.0), vents).any()
    # the stand is a braced truss: its side profile has two triangular openings
    printed = case.printed["stand"]
    assert loop_count(section(printed, "z", printed.bounds[1][2] / 2)) >= 3


@needs_openscad
def test_stand_holds_the_frame_steady_at_its_angle(case: Case) -> None:
    p, stand, back, shell = case.p, *(case.placed[n] for n in ("stand", "backplate", "front_shell"))
    down = facing_normal(stand, [0, -1, 0])
    assert np.degrees(np.arctan2(down[2], -down[1])) == pytest.approx(p["stand_angle"], abs=0.2)
    desk = (stand.vertices @ down).max()
    assert max((shell.vertices @ down).max(), (back.vertices @ down).max()) < desk - 0.5
    back_dir = np.cross(-down, [1.0, 0, 0])
    back_dir *= np.sign(back_dir[2])
    feet = stand.vertices[stand.vertices @ down > desk - 0.05] @ back_dir
    mass = (shell.center_mass * shell.volume + back.center_mass * back.volume) / (
        shell.volume + back.volume
    )
    x0, x1, y0, y1 = BOARD["outline_bbox"]
    board = np.array([(x0 + x1) / 2, (y0 + y1) / 2, p["z_pcb_f"]])
    for point in (mass, board):
        assert feet.min() + 10 < point @ back_dir < feet.max() - 10


SWEEP = [(0.2, 1.6, 15, "screw"), (0.6, 3.0, 15, "screw"), (0.4, 2.3, 25, "insert")]


@needs_openscad
@pytest.mark.parametrize("clearance,wall,angle,fastener", SWEEP)
def test_parameter_sweep_stays_printable(
    tmp_path: Path, clearance: float, wall: float, angle: float, fastener: str
) -> None:
    defines = [f"clearance={clearance}", f"wall={wall}", f"stand_angle={angle}"]
    proc = run_build(tmp_path, *defines, f"fastener={fastener}")
    assert proc.returncode == 0, proc.stderr
    swept = Case(tmp_path)
    check_printable(swept)
    p = swept.p
    holes = np.array(BOARD["mounting_holes_drill_3.0_pad_3.6"])
    for hole, (centre, diameter, _) in zip(
        holes, standoffs(swept.placed["front_shell"]), strict=True
    ):
        assert np.linalg.norm(centre - hole) <= 0.2
        assert diameter == pytest.approx(4.0 if fastener == "insert" else 2.5, abs=0.3)
    gaps, walls = side_gaps(section(swept.placed["front_shell"], "z", p["z_pcb_f"] + 0.8))
    assert min(gaps) == pytest.approx(clearance, abs=0.02)
    assert min(walls) == pytest.approx(wall, abs=0.02)
    down = facing_normal(swept.placed["stand"], [0, -1, 0])
    assert np.degrees(np.arctan2(down[2], -down[1])) == pytest.approx(angle, abs=0.2)


@needs_openscad
@pytest.mark.parametrize(
    "define,name",
    [
        ("wall=1.2", "wall"),
        ("clearance=3", "clearance"),
        ("screw_len=12", "screw_len"),
        ("stand_angle=60", "stand_angle"),
        ("fastener=glue", "fastener"),
    ],
)
def test_a_bad_parameter_stops_the_build_by_name(tmp_path: Path, define: str, name: str) -> None:
    proc = run_build(tmp_path, define, opts=("--no-preview", "--parts", "front_shell"))
    assert proc.returncode == 1, proc.stdout
    assert f"{name} = {define.split('=')[1]}" in proc.stderr, proc.stderr
    assert not (tmp_path / "front_shell.stl").exists()


def test_an_unknown_parameter_is_refused(tmp_path: Path) -> None:
    proc = run_build(tmp_path, "wal=2")
    assert proc.returncode == 2
    assert "unknown parameter 'wal'" in proc.stderr


@needs_openscad
@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run: apt-get install xvfb")
def test_preview_shows_the_assembly(tmp_path: Path) -> None:
    png = tmp_path / "preview.png"
    proc = run_build(tmp_path / "out", opts=("--parts", "front_shell", "--preview", str(png)))
    assert proc.returncode == 0, proc.stderr
    img = Image.open(png).convert("RGB")
    assert img.height == 600 and img.width > 900  # two views side by side
    px = np.asarray(img).reshape(-1, 3).astype(int)
    assert len(np.unique(px, axis=0)) > 50  # shaded, not blank
    assert (px.max(axis=1) < 40).mean() > 0.02  # the display glass
    assert (px[:, 2] > px[:, 0] + 40).mean() > 0.02  # the stand


def test_docs_show_the_committed_preview() -> None:
    assert "img/case.png" in (ROOT / "docs" / "case.md").read_text()
    assert (ROOT / "docs" / "img" / "case.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

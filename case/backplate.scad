// titanoframe case: backplate (screws, RESET access, vents, keyholes for the wall and the stand).
// Modelled in place at the back of the shell; prints outer face down (backplate_pose).
include <params.scad>
include <lib.scad>

module backplate() {
  difference() {
    union() {
      translate([0, 0, z_rim]) linear_extrude(back_t) difference() {
        offset(r = wall) rect(cav);
        vents();
        translate(reset_xy) polycircle(reset_hole_d);
        for (x = keyhole_x) keyhole_2d(x);
      }
      lip();
      clamp_tubes();
      for (x = keyhole_x) keyhole_pocket(x);
      reset_guide();
    }
    screw_holes();
  }
}

// Fits inside the shell walls and keeps the backplate centred.
module lip() {
  translate([0, 0, z_rim - lip_h]) linear_extrude(lip_h + 0.01) difference() {
    rect(grow(cav, -lid_fit));
    rect(grow(cav, -lid_fit - lip_w));
  }
}

// Tubes from the backplate down to the board: one M3 screw per corner holds backplate, board
// and shell together.
module clamp_tubes() {
  translate([0, 0, z_pcb_b]) linear_extrude(z_rim - z_pcb_b + 0.01) intersection() {
    for (h = board_holes) translate(h) circle(d = tube_d);
    rect(grow(cav, -lid_fit));
  }
}

module screw_holes() {
  for (h = board_holes) translate([h[0], h[1], 0]) {
    translate([0, 0, z_pcb_b - 1]) polyhole(screw_clear_d, depth);
    translate([0, 0, depth - csk_depth])
      cylinder(d1 = screw_clear_d, d2 = csk_d + 2, h = csk_depth + 1);
  }
}

// Entry hole below, slot up to the hanging position (x, keyhole_y).
module keyhole_2d(x) {
  translate([x, keyhole_y - keyhole_slot]) circle(d = keyhole_entry_d);
  stadium([x, keyhole_y - keyhole_slot], [x, keyhole_y], keyhole_slot_w);
}

// Behind the slot, a pocket for the screw head (or the stand's peg); its roof bridges the
// pocket's width.
module keyhole_pocket(x) {
  a = [x, keyhole_y - keyhole_slot];
  b = [x, keyhole_y];
  difference() {
    translate([0, 0, z_rim - keyhole_boss_h]) linear_extrude(keyhole_boss_h + 0.01)
      stadium(a, b, keyhole_cav_w + 2 * min_wall);
    translate([0, 0, z_rim - keyhole_cav_h]) linear_extrude(keyhole_cav_h + 0.02)
      stadium(a, b, keyhole_cav_w);
  }
}

// Guides a pin straight onto the RESET button.
module reset_guide() {
  translate([reset_xy[0], reset_xy[1], z_parts + 0.5]) difference() {
    cylinder(d = reset_hole_d + 2 * min_wall, h = z_rim - z_parts - 0.49);
    translate([0, 0, -1]) polyhole(reset_hole_d, z_rim);
  }
}

// Slots along the bottom (air in) and top (air out) of the board, clear of the tubes, the
// keyhole pockets and the RESET guide.
module vents() {
  rows = [[board_body[2] + 1.5, board_body[2] + 13.5],
          [keyhole_y + keyhole_cav_w / 2 + min_wall + 2, board_body[3] - 1]];
  for (row = rows, x = [board_body[0] + 6 : vent_pitch : board_body[1] - 5])
    if (row == rows[0] || abs(x - reset_xy[0]) > 6)
      rect([x - vent_w / 2, x + vent_w / 2, row[0], row[1]]);
}

echo("POSE", "backplate", backplate_pose);
if (is_undef(_assembly)) multmatrix(backplate_pose) backplate();

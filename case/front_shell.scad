// titanoframe case: front shell (bezel, display pocket, standoffs, side openings, light pipe).
// Prints face down exactly as modelled: its print pose is the identity.
include <params.scad>
include <lib.scad>

module front_shell() {
  difference() {
    union() {
      shell_box();
      standoffs();
      pocket_rim();
      translate([light_xy[0], light_xy[1], front_t - 0.01])
        cylinder(d = lightpipe_boss_d, h = z_lightpipe_end - front_t + 0.01);
    }
    window();
    standoff_holes();
    translate([light_xy[0], light_xy[1], -1]) polyhole(lightpipe_hole_d, z_pcb_f + 1);
    side_opening(usb_xy[1], z_usb, usb_open, usb_chamfer);
    side_opening(sd_xy[1], z_sd, sd_open, sd_chamfer);
  }
}

module shell_box() {
  difference() {
    linear_extrude(z_rim) offset(r = wall) rect(cav);
    translate([0, 0, front_t]) linear_extrude(z_rim) rect(cav);
  }
}

// The display glass plus clearance, from the bezel to the board: kept free of everything.
module glass_pocket() translate([0, 0, front_t - 0.02]) linear_extrude(z_pcb_f - front_t + 0.04)
  rect(grow(tft_glass, clearance));

module standoffs() {
  difference() {
    for (h = board_holes) translate([h[0], h[1], front_t - 0.01])
      cylinder(d = standoff_d, h = z_pcb_f - front_t + 0.01);
    glass_pocket();
  }
}

module standoff_holes() {
  for (h = board_holes) translate([h[0], h[1], 0]) {
    if (fastener == "insert") {
      translate([0, 0, z_pcb_f - insert_len - 0.5]) polyhole(insert_d, insert_len + 1.5);
      translate([0, 0, z_hole_bottom]) polyhole(screw_d + 0.2, z_pcb_f);
    } else {
      translate([0, 0, z_hole_bottom]) polyhole(pilot_d, z_pcb_f);
    }
  }
}

// A low rim around the glass on the left, top and bottom; the right side stays open for the
// display's flex cable, which folds round the glass edge there.
module pocket_rim() {
  pocket = grow(tft_glass, clearance);
  translate([0, 0, front_t - 0.01]) linear_extrude(rim_h + 0.01) difference() {
    rect([pocket[0] - rim_w, pocket[1] - 6, pocket[2] - rim_w, pocket[3] + rim_w]);
    rect(pocket);
  }
}

module window() {
  translate([0, 0, -1]) linear_extrude(front_t + 2) rect(tft_visible);
  if (window_chamfer > 0) hull() {
    translate([0, 0, -0.01]) linear_extrude(0.01) rect(grow(tft_visible, window_chamfer + 0.01));
    translate([0, 0, window_chamfer]) linear_extrude(0.01) rect(tft_visible);
  }
}

// An opening through the left (x0) wall centred on (y, z); +z is up when printing.
module side_opening(y, z, size, ch) {
  translate([cav[0] - wall - 1, y, z]) rotate([0, 90, 0]) linear_extrude(wall + 2)
    rotate(90) chamfered_rect(size, ch);
}

echo("POSE", "front_shell", identity_pose);
if (is_undef(_assembly)) front_shell();

// titanoframe case: desk stand. Two pegs lock into the backplate's keyholes (like wall screws),
// a snap hook clicks over the frame's top edge so the stand cannot slide off, and a ledge under
// the frame, a base and a braced leg form a rigid truss. Drawn as a side profile (u backwards,
// v up, desk at v = 0) extruded across the frame; it prints lying on that profile.
include <params.scad>
include <lib.scad>

st_s = sin(stand_angle);
st_c = cos(stand_angle);
st_yb = outer[2];                             // the frame's bottom face
st_yt = outer[3];                             // the frame's top face
st_ledge_t = stand_t;
st_leg_t = stand_t + 1;
st_y_ledge = st_yb - hook_gap - st_ledge_t;   // underside of the ledge
st_zb_toe = -depth - hook_gap - toe[0];       // front of the toe (zb: behind the back face)
st_y_root = keyhole_y + peg_head_r + 2;       // where the snap arm leaves the spine
st_y_pad = keyhole_y - keyhole_slot - 4;      // the spine touches the back only above this
st_back = stand_air + stand_t;                // back face of the spine (zb)
// height of the frame's back-bottom edge above the desk: the ledge's lowest corner on the desk
st_h0 = max(st_back * st_s + (hook_gap + st_ledge_t) * st_c, stand_t + hook_gap);
function side_pt(zb, y) = [zb * st_c + (y - st_yb) * st_s, -zb * st_s + (y - st_yb) * st_c + st_h0];
st_u_toe = side_pt(st_zb_toe, st_y_ledge)[0];
st_u_heel = stand_reach;
st_x1 = hole_mid[0] + stand_w / 2;
st_leg_top = side_pt(st_back, keyhole_y);
st_leg_foot = [st_u_heel - 4, stand_t / 2];

// Assembly coordinates -> print bed: X = u - u_toe, Y = v, Z = x1 - x (the profile lies flat).
stand_pose = [
  [0, st_s, st_c, -depth * st_c - st_yb * st_s - st_u_toe],
  [0, st_c, -st_s, depth * st_s - st_yb * st_c + st_h0],
  [-1, 0, 0, st_x1],
  [0, 0, 0, 1]
];
// Assembly coordinates -> the desk, for pictures: x right seen from the front, y back, z up.
world_pose = [
  [-1, 0, 0, st_x1],
  [0, st_s, st_c, -depth * st_c - st_yb * st_s],
  [0, st_c, -st_s, depth * st_s - st_yb * st_c + st_h0],
  [0, 0, 0, 1]
];

module stand_print() {
  linear_extrude(stand_w) translate([-st_u_toe, 0]) stand_profile();
  multmatrix(stand_pose) pegs();
}

module stand() multmatrix(pose_inverse(stand_pose)) stand_print();

module stand_profile() {
  intersection() {
    union() {
      side_to_world(stand_angle, st_yb, st_h0) frame_side_members();
      hull() {
        side_to_world(stand_angle, st_yb, st_h0) ledge_plate();
        translate([st_u_toe, 0]) square([side_pt(st_back, st_y_ledge)[0] - st_u_toe, stand_t]);
      }
      translate([st_u_toe, 0]) square([st_u_heel - st_u_toe, stand_t]);
      hull() {
        side_to_world(stand_angle, st_yb, st_h0)
          translate([st_back - 0.01, keyhole_y - st_leg_t / 2]) square([0.01, st_leg_t]);
        translate([st_u_heel - 8, 0]) square([8, stand_t]);
      }
      rib((st_leg_top + st_leg_foot) / 2);
    }
    translate([-1000, 0]) square([2000, 1000]);
  }
}

// A vertical rib from the base up to the leg: two triangles make the truss rigid.
module rib(p) translate([p[0] - stand_t / 2, 0]) square([stand_t, p[1]]);

// In frame side coordinates: x = zb (behind the back face), y = frame y.
// The spine stands `stand_air` off the back except for a pad round the pegs; the snap arm
// leaves the spine's top and its hook reaches forward over the frame's top edge.
module frame_side_members() {
  ledge();
  translate([stand_air, st_y_ledge]) square([stand_t, st_y_root - st_y_ledge]);
  polygon([[0, st_y_pad], [0, st_y_root], [stand_air + 0.01, st_y_root],
           [stand_air + 0.01, st_y_pad - stand_air]]);
  arm_top = st_yt + hook_gap + hook_h;
  translate([stand_air, st_y_root - 0.01]) square([stand_arm_t, arm_top - st_y_root]);
  y0 = st_yt + hook_gap;
  x1 = stand_air + stand_arm_t - 0.01;
  polygon([[-hook_lip, y0], [x1, y0], [x1, arm_top], [-hook_lip + 1, arm_top],
           [-hook_lip, arm_top - 1]]);
}

// The frame sits on the ledge; the toe stops its bottom edge sliding forward.
module ledge() {
  ledge_plate();
  translate([st_zb_toe, st_y_ledge]) square([toe[0], st_yb + toe[1] - st_y_ledge]);
}
module ledge_plate() translate([st_zb_toe, st_y_ledge]) square([st_back - st_zb_toe, st_ledge_t]);

// Pegs that hang in the keyholes like wall screws. They print lying down with +x (the tip of
// their sections) downwards: the neck is a pointed teardrop and the head only widens above the
// neck's 45 degree flanks, so nothing overhangs more than 45 degrees.
module pegs() {
  z_head = depth - back_t - peg_play;
  keel = peg_neck_r * sqrt(2);
  for (x = keyhole_x) translate([x - (keel - peg_neck_r) / 2, keyhole_y, 0]) rotate(90) {
    translate([0, 0, z_head]) linear_extrude(back_t + peg_play + stand_air / 2)
      teardrop(peg_neck_r, keel);
    translate([0, 0, z_head - peg_head_t]) linear_extrude(peg_head_t + 0.01) intersection() {
      circle(r = peg_head_r);
      polygon([[0, -keel], [2 * peg_head_r, 2 * peg_head_r - keel],
               [-2 * peg_head_r, 2 * peg_head_r - keel]]);
    }
  }
}

echo("POSE", "stand", stand_pose);
echo("POSE", "world", world_pose);
if (is_undef(_assembly)) stand_print();

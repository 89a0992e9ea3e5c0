// titanoframe case: small shapes and transforms shared by the parts (no geometry of its own).

// 2D rectangle from [x0, x1, y0, y1].
module rect(b) translate([b[0], b[2]]) square([b[1] - b[0], b[3] - b[2]]);

// 2D rectangle of size [w, h] centred on the origin, corners cut at 45 degrees by `ch`:
// printed with +y up, the cut corners keep the flat top short enough to bridge.
module chamfered_rect(size, ch) {
  w = size[0] / 2;
  h = size[1] / 2;
  polygon([[-w + ch, -h], [w - ch, -h], [w, -h + ch], [w, h - ch],
           [w - ch, h], [-w + ch, h], [-w, h - ch], [-w, -h + ch]]);
}

// 2D stadium: circles of diameter d at a and b, and everything between.
module stadium(a, b, d) hull() { translate(a) circle(d = d); translate(b) circle(d = d); }

// 2D teardrop pointing to -y, its tip cut flat `flat` below the centre (r <= flat <= r*sqrt(2);
// r*sqrt(2) keeps the point):
// a horizontal hole or peg with this section prints without supports when -y is down.
module teardrop(r, flat) {
  n = max(16, 8 * ceil(2 * PI * r / $fs / 8));
  arc = [for (i = [0 : n * 3 / 4]) let(a = -45 + i * 360 / n) [r * cos(a), r * sin(a)]];
  tip = r * sqrt(2) - flat;
  polygon(concat(arc, tip > 0.01 ? [[-tip, -flat], [tip, -flat]] : [[0, -r * sqrt(2)]]));
}

// A vertical hole of diameter d that prints true to size: the flats of the polygon, not its
// corners, lie on the circle.
module polycircle(d) {
  n = max(8, ceil(min(360 / $fa, PI * d / $fs)));
  circle(r = d / 2 / cos(180 / n), $fn = n);
}
module polyhole(d, h) linear_extrude(h) polycircle(d);

// Rigid transforms as 4x4 matrices.
function pose_inverse(m) = let(
  r = [[m[0][0], m[1][0], m[2][0]], [m[0][1], m[1][1], m[2][1]], [m[0][2], m[1][2], m[2][2]]],
  t = -(r * [m[0][3], m[1][3], m[2][3]])
) [[r[0][0], r[0][1], r[0][2], t[0]], [r[1][0], r[1][1], r[1][2], t[1]],
   [r[2][0], r[2][1], r[2][2], t[2]], [0, 0, 0, 1]];

identity_pose = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]];

// The backplate prints outer face down: turned over about the x axis.
backplate_pose = [[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, depth], [0, 0, 0, 1]];

// Frame side coordinates (zb = distance behind the back face, y) to the world seen from the
// side when the frame stands on the desk: u backwards, v up. h0 is how high the frame's
// back-bottom edge stands above the desk.
function side_pose(theta, y_bottom, h0) = [
  [0, sin(theta), cos(theta), -depth * cos(theta) - y_bottom * sin(theta)],
  [0, cos(theta), -sin(theta), depth * sin(theta) - y_bottom * cos(theta) + h0]
];

// 2D: shapes drawn in frame side coordinates (x = zb, y = y) placed in the side world (u, v).
module side_to_world(theta, y_bottom, h0)
  translate([0, h0]) rotate(-theta) translate([0, -y_bottom]) children();

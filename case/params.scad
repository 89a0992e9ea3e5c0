// titanoframe case: every number the parts use, with where it comes from.
//
// COORDINATES (read this before changing anything)
//   x, y  are the board's own Eagle coordinates, exactly as in tests/data/titano_pcb_geometry.json:
//         the board seen from its BACK (component side), x to the right, y up.
//   z     grows from the front face of the case (z = 0, the face you look at) toward the back.
//   That is a right-handed frame, so the board drops into it without any mirroring: the front
//   shell, printed face down, shows the board exactly as the geometry file draws it.
//   Seen from the FRONT everything is mirrored left-right: the board's "left" edge (x = -5.08,
//   USB-C and microSD) is on the RIGHT-hand side when you look at the display.
//   "Up" on the wall and on the stand is +y (USB-C near the bottom, so the cable hangs down).
//
// Override any value from the command line: case/build.py -D clearance=0.5 -D fastener="insert"
// Values marked ESTIMATE were not measured on a board: measure yours and change them.

// ---------------------------------------------------------------- board facts (measured)
// Source: Adafruit PyPortal Titano PCB design files, via titano_pcb_geometry.json (mm).
board_outline = [-5.08, 86.36, -5.207, 60.452];   // [x0, x1, y0, y1] incl. the side rails
board_body = [0, 81.28, 0, 55.372];               // the part between the rails
board_holes = [[-2.54, -2.54], [83.82, -2.54], [-2.54, 57.785], [83.82, 57.785]];
board_hole_d = 3.0;                               // drill; pads are 3.6
tft_visible = [3.345, 78.445, 2.356, 53.016];     // display visible area [x0, x1, y0, y1]
tft_glass = [1.495, 86.195, 0.516, 54.856];       // display glass outline
usb_xy = [-2.159, 9.525];                         // X5 USB-C, opens on the left (x0) edge
sd_xy = [11.303, 29.718];                         // X1 microSD socket centre; card enters at x0
light_xy = [-2.159, 32.004];                      // U4 ALS-PT21 light sensor
reset_xy = [38.862, 50.673];                      // RESET button, on the back

// ---------------------------------------------------------------- board facts (estimates)
pcb_t = 1.6;            // standard FR-4 thickness (not stated in the design files)
stack_t = 11.0;         // ESTIMATE board + display stack (TITANO.md, from a published case)
display_t = 4.3;        // ESTIMATE display module (glass + backlight) in front of the PCB
usb_h = 3.26;           // USB-C receptacle height above the back face (typical top-mount part)
usb_plug = [12.4, 6.6]; // ESTIMATE overmould of a typical USB-C cable plug [width, height]
sd_card_z = 0.9;        // ESTIMATE microSD card mid-plane above the PCB back face
sd_card_w = 11.0;       // microSD card width (SD Association spec)
parts_h = stack_t - display_t - pcb_t;  // tallest part on the back of the board

// ---------------------------------------------------------------- clearances and fits
clearance = 0.4;        // board edge to the shell walls, every side
glass_gap = 0.3;        // bezel to glass: the bezel must never press the resistive touch layer
lid_fit = 0.2;          // backplate lip to the shell walls
back_clear = 4.6;       // tallest back part to the backplate (room for the keyhole pockets)
opening_clear = 0.4;    // around the USB-C plug and the microSD card
lightpipe_d = 1.75;     // filament used as the light pipe
lightpipe_fit = 0.2;    // diametral play of the light pipe in its hole
lightpipe_gap = 1.0;    // guide tube end to the board: room for a sensor on the front face

// ---------------------------------------------------------------- walls and print settings
wall = 2.0;             // side walls (>= 4 perimeters of a 0.4 mm nozzle)
front_t = 2.4;          // front plate (bezel)
back_t = 2.6;           // backplate
window_chamfer = 1.0;   // 45 degree chamfer on the front of the window (viewing angle)
rim_w = 1.2;            // display pocket rim width
rim_h = 1.6;            // display pocket rim height
layer_h = 0.2;          // print layer height
nozzle = 0.4;           // print nozzle
min_wall = 4 * nozzle;  // thinnest wall we accept anywhere
max_overhang = 45;      // degrees from vertical, printable without supports
max_bridge = 10;        // mm, longest unsupported bridge
bed = [180, 180];       // smallest print bed every part must fit
$fa = 12;               // facet angle and size: fine enough for FDM; finer renders slower
$fs = 0.8;

// ---------------------------------------------------------------- fasteners
fastener = "screw";     // "screw": M3 thread-forming into the standoff; "insert": heat-set insert
screw_d = 3.0;          // M3
screw_len = 20;         // M3 x 20 countersunk (ISO 10642 / ISO 7046), head flush with the back
screw_clear_d = 3.4;    // clearance hole
csk_d = 6.8;            // countersink diameter at the surface (90 degrees, head <= 6.72)
pilot_d = 2.5;          // thread-forming pilot for M3 in PLA/PETG
insert_d = 4.0;         // heat-set insert hole (M3 x 4 short insert)
insert_len = 4.0;
min_engage = 4.0;       // shortest thread engagement we accept
standoff_d = 6.4;
tube_d = 6.4;           // clamp tubes on the backplate that press the board onto the standoffs

// ---------------------------------------------------------------- keyholes and stand
keyhole_dx = 40;        // keyhole spacing, centred on the board
keyhole_y = 38;         // where a wall screw ends up (top of the slot)
keyhole_head_d = 8.0;   // largest screw head accepted
keyhole_shank_d = 4.0;  // largest screw shank accepted
keyhole_slot = 8;       // travel from the entry hole to the hanging position
keyhole_head_h = 2.4;   // tallest screw head accepted
stand_angle = 15;       // degrees the display leans back from vertical
stand_reach = 50;       // how far the stand's foot reaches behind the frame
stand_t = 4.0;          // spine, base and leg thickness
stand_arm_t = 1.6;      // the snap arm flexes: thinner than the spine
stand_air = 3;          // the stand stands off the back here, so air reaches the vents
peg_play = 0.3;         // peg neck longer than the backplate is thick
hook_gap = 0.3;         // hook above the frame's top edge (and ledge below the bottom edge)
hook_h = 2.4;
toe = [2.4, 4];         // lip in front of the frame's bottom edge [thickness, height]
vent_w = 2.0;
vent_pitch = 5;

// ================================================================= derived (do not edit)
function grow(b, d) = [b[0] - d, b[1] + d, b[2] - d, b[3] + d];
function mid(b) = [(b[0] + b[1]) / 2, (b[2] + b[3]) / 2];

cav = grow(board_outline, clearance);     // inner cavity of the shell
outer = grow(cav, wall);                  // outside of the shell (corners rounded by `wall`)
hole_mid = mid([board_holes[0][0], board_holes[1][0], board_holes[0][1], board_holes[2][1]]);

z_glass = front_t + glass_gap;            // front face of the display glass
z_pcb_f = z_glass + display_t;            // front face of the PCB = top of the standoffs
z_pcb_b = z_pcb_f + pcb_t;                // back face of the PCB
z_parts = z_pcb_b + parts_h;              // top of the tallest part on the back
z_rim = z_parts + back_clear;             // rim of the shell = inner face of the backplate
depth = z_rim + back_t;                   // overall depth

z_usb = z_pcb_b + usb_h / 2;
usb_open = [usb_plug[0] + 2 * opening_clear, usb_plug[1] + 2 * opening_clear];
z_sd = z_pcb_b + sd_card_z;
sd_open = [sd_card_w + 1 + 2 * opening_clear, 3.2];
usb_chamfer = 1.8;                        // 45 degree corners keep the bridge over the top short
sd_chamfer = sd_open[1] / 2;

lightpipe_hole_d = lightpipe_d + lightpipe_fit;
lightpipe_boss_d = lightpipe_hole_d + 2 * min_wall;
z_lightpipe_end = z_pcb_f - lightpipe_gap;

csk_depth = (csk_d - screw_clear_d) / 2;  // 90 degree countersink
z_screw_tip = depth - screw_len;
screw_engage = z_pcb_f - z_screw_tip;
front_skin = 2 * layer_h;                 // solid layers left in front of a blind hole
z_hole_bottom = z_screw_tip - 2 * layer_h;
insert_wall = (tft_glass[2] - clearance) - (board_holes[0][1] + insert_d / 2);

lip_w = min_wall;
lip_h = 2.0;
keyhole_entry_d = keyhole_head_d + 0.5;
keyhole_slot_w = keyhole_shank_d + 0.5;
keyhole_cav_w = keyhole_entry_d + 0.5;
keyhole_cav_h = keyhole_head_h + 0.3;
keyhole_roof = min_wall;
keyhole_boss_h = keyhole_cav_h + keyhole_roof;
keyhole_x = [hole_mid[0] - keyhole_dx / 2, hole_mid[0] + keyhole_dx / 2];
reset_hole_d = 3.5;

// The stand's pegs print lying down: their sections come to a 45 degree keel underneath, so
// the neck is narrower than its circle suggests; it is centred in the slot.
peg_neck_r = (keyhole_slot_w - 0.4) / (1 + sqrt(2));
peg_head_r = keyhole_head_d / 2 - 0.4;
peg_head_t = keyhole_head_h - 0.5;
hook_lip = 1.6;                           // how far the hook reaches over the top edge
stand_w = keyhole_dx + 2 * peg_head_r + 2 * 8;

outer_size = [outer[1] - outer[0], outer[3] - outer[2]];

// ---------------------------------------------------------------- sanity checks
function between(v, lo, hi) = is_num(v) && v >= lo && v <= hi;
assert(between(clearance, 0.1, 1.5), str("clearance = ", clearance, ": must be 0.1 to 1.5 mm"));
assert(between(wall, min_wall, 6), str("wall = ", wall, ": must be ", min_wall, " to 6 mm"));
assert(between(front_t, min_wall, 6),
       str("front_t = ", front_t, ": must be ", min_wall, " to 6 mm"));
assert(between(back_t, max(min_wall, csk_depth + 2 * layer_h), 8),
       str("back_t = ", back_t, ": must be at least ", max(min_wall, csk_depth + 2 * layer_h),
           " mm (countersink ", csk_depth, " mm plus two layers)"));
assert(between(layer_h, 0.05, 0.35), str("layer_h = ", layer_h, ": must be 0.05 to 0.35 mm"));
assert(between(window_chamfer, 0, front_t - min_wall / 2),
       str("window_chamfer = ", window_chamfer, ": must be 0 to ", front_t - min_wall / 2, " mm"));
assert(between(glass_gap, 0, 2), str("glass_gap = ", glass_gap, ": must be 0 to 2 mm"));
assert(between(display_t, 1, 10), str("display_t = ", display_t, ": must be 1 to 10 mm"));
assert(parts_h > 0, str("stack_t = ", stack_t, ": must exceed display_t + pcb_t = ",
                        display_t + pcb_t, " mm"));
assert(back_clear >= keyhole_boss_h + 0.3 && back_clear >= lip_h + 0.3,
       str("back_clear = ", back_clear, ": must be at least ", max(keyhole_boss_h, lip_h) + 0.3,
           " mm so the keyhole pockets and the lip stay clear of the board's parts"));
assert(fastener == "screw" || fastener == "insert",
       str("fastener = ", fastener, ": must be \"screw\" or \"insert\""));
assert(screw_engage >= min_engage,
       str("screw_len = ", screw_len, ": too short, engages ", screw_engage, " mm (< ", min_engage,
           "); use at least ", depth - z_pcb_f + min_engage, " mm"));
assert(z_hole_bottom >= front_skin,
       str("screw_len = ", screw_len, ": too long, its tip would come through the bezel; use",
           " at most ", depth - front_skin - 2 * layer_h, " mm"));
assert(fastener != "insert" || insert_wall >= 0.6,
       str("insert_d = ", insert_d, " with clearance = ", clearance, ": leaves ", insert_wall,
           " mm of standoff wall beside the glass, inserts need 0.6; use a smaller insert_d or",
           " clearance"));
assert(fastener != "insert" || insert_len + 0.5 <= z_pcb_f - front_skin,
       str("insert_len = ", insert_len, ": the standoffs are only ", z_pcb_f - front_skin - 0.5,
           " mm deep"));
assert(between(stand_angle, 5, 35),
       str("stand_angle = ", stand_angle, ": must be 5 to 35 degrees"));
assert(between(stand_reach, 30, 120), str("stand_reach = ", stand_reach, ": must be 30 to 120 mm"));
assert(between(stand_arm_t, min_wall, 2.4),
       str("stand_arm_t = ", stand_arm_t, ": must be ", min_wall, " to 2.4 mm"));
assert(keyhole_cav_w <= max_bridge,
       str("keyhole_head_d = ", keyhole_head_d, ": its pocket roof would bridge ", keyhole_cav_w,
           " mm (> ", max_bridge, ")"));
assert(usb_open[0] - 2 * usb_chamfer <= max_bridge,
       str("usb_plug = ", usb_plug, ": the opening's top would bridge more than ", max_bridge,
           " mm"));
assert(sd_open[0] - 2 * sd_chamfer <= max_bridge,
       str("sd_card_w = ", sd_card_w, ": the slot's top would bridge more than ", max_bridge,
           " mm"));
assert(outer_size[0] <= bed[0] && outer_size[1] <= bed[1],
       str("wall = ", wall, " / clearance = ", clearance, ": the shell (", outer_size,
           ") does not fit the ", bed, " bed"));

// ---------------------------------------------------------------- report for build.py
echo("REPORT", [
  ["clearance", clearance], ["wall", wall], ["front_t", front_t], ["back_t", back_t],
  ["fastener", fastener], ["pcb_t", pcb_t], ["cav", cav], ["outer", outer],
  ["z_glass", z_glass], ["z_pcb_f", z_pcb_f], ["z_pcb_b", z_pcb_b], ["z_parts", z_parts],
  ["z_rim", z_rim], ["depth", depth], ["window", tft_visible], ["window_chamfer", window_chamfer],
  ["holes", board_holes], ["usb", [usb_xy[0], usb_xy[1], z_usb]], ["usb_open", usb_open],
  ["sd", [sd_xy[0], sd_xy[1], z_sd]], ["sd_open", sd_open],
  ["light", [light_xy[0], light_xy[1]]], ["lightpipe_hole_d", lightpipe_hole_d],
  ["lightpipe_len", z_lightpipe_end], ["reset", reset_xy], ["reset_hole_d", reset_hole_d],
  ["keyholes", [[keyhole_x[0], keyhole_y], [keyhole_x[1], keyhole_y]]],
  ["keyhole_slot", keyhole_slot], ["screw_len", screw_len], ["screw_engage", screw_engage],
  ["keyhole_pocket_h", keyhole_cav_h], ["keyhole_boss_h", keyhole_boss_h], ["tube_d", tube_d],
  ["stand_angle", stand_angle], ["min_wall", min_wall], ["bed", bed],
  ["max_overhang", max_overhang], ["max_bridge", max_bridge], ["layer_h", layer_h]
]);

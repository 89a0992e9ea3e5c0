// titanoframe case: the assembled frame standing on its stand, for previews (not for printing).
_assembly = true;
include <front_shell.scad>
include <backplate.scad>
include <stand.scad>

explode = 0;  // mm the backplate and stand move back from the shell, to show how it goes together

module board_stand_in() {
  color("#101418") translate([0, 0, z_glass]) linear_extrude(display_t) rect(tft_glass);
  color("#1d5e3a") translate([0, 0, z_pcb_f]) linear_extrude(pcb_t) {
    rect(board_body);
    rect([board_outline[0], board_body[0], board_outline[2], board_outline[3]]);
    rect([board_body[1], board_outline[1], board_outline[2], board_outline[3]]);
  }
}

multmatrix(world_pose) {
  color("#e8e6e1") front_shell();
  board_stand_in();
  color("#d8d5cf") translate([0, 0, explode]) backplate();
  color("#3d7ea6") translate([0, 0, 2 * explode]) stand();
}

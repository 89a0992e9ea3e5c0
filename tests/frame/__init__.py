"""Tests of the frame (titano_app/): the board app, on CPython and in the simulator."""

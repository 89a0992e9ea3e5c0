"""The frame simulator: the frame app, unchanged, on CPython. Never copied to the board.

`device.SimDevice` stands in for `frame.hw.Board`: the SD card is a folder, the screen is Blinka
displayio on a fake display saved as a PNG after every draw, the light level and touches come
from a control file, the network is CPython's sockets (optionally through `pool.FlakyPool`, which
fails on demand). `python -m titano_app.sim --help` runs it. Only the simulated board lives
here: `make demo` and `make bundle` are in tools/, the kit tests drive it with in tests/kit/.
"""

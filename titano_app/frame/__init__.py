"""The frame's own code: what runs on the PyPortal Titano (and, unchanged, under CPython).

Modules named for things (manifest, playlist, commands, topics, state, settings, bmp) are pure:
values in, values out, time passed in. `store` does the SD card's file I/O; `hw` (the only module
that imports hardware) and the network links live in their own modules.
"""

VERSION = "0.1.0"

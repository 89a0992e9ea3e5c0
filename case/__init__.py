"""The printable enclosure: OpenSCAD sources, the build script and mesh measurements."""

"""Tools run from a checkout, never installed: `make demo` (`tools.demo`, with its Mosquitto and
sample photos) and `make bundle` (`tools.bundle`). They may import any part of the project.
"""

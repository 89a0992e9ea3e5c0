"""The test kit: what the tests of every part build on (a real Mosquitto, MQTT clients, the fake
Immich, rigs for the bridge, the renderer, the simulated frame and the whole system), and where
the checkout and the vendored reference data are.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"

"""`python -m titano_app.sim`: run the frame app on CPython until Ctrl-C (or --seconds).

    python -m titano_app.sim --settings settings.toml --card ./card --screen screen.png \\
        [--control control.txt] [--seconds N]

settings.toml is the board's file (FRAME_ID, FRAME_SECRET, MQTT_HOST, MQTT_PORT; Wi-Fi keys
are ignored). Append lines to the control file to act on the frame: `light 12000`,
`touch 400` (x: left third previous, right third next, middle pause), `wifi off`, `wifi on`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
import tomllib
from pathlib import Path

from titano_app.frame.app import App
from titano_app.sim.device import SimDevice


def read_settings(path: Path) -> dict[str, str]:
    """settings.toml as strings, the way os.getenv gives them on the board."""
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    return {k: str(v) for k, v in doc.items()}


def run(app: App, seconds: float | None = None) -> None:
    stop = [False]

    def _stop(*_: object) -> None:
        stop[0] = True

    signal.signal(signal.SIGTERM, _stop)
    end = None if seconds is None else time.monotonic() + seconds
    try:
        while not stop[0] and (end is None or time.monotonic() < end):
            app.tick(app.clock())
            if not app.link.connected:
                time.sleep(0.02)  # offline: nothing blocks in the loop, so do not spin
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m titano_app.sim", description=__doc__)
    parser.add_argument("--settings", type=Path, required=True)
    parser.add_argument("--card", type=Path, required=True, help="folder standing in for the SD")
    parser.add_argument("--screen", type=Path, required=True, help="PNG written after each draw")
    parser.add_argument("--control", type=Path, help="file of light/touch/wifi lines to follow")
    parser.add_argument("--seconds", type=float, help="stop after this long")
    args = parser.parse_args(argv)
    try:
        settings = read_settings(args.settings)
    except (OSError, tomllib.TOMLDecodeError) as e:
        print(f"sim: cannot read {args.settings}: {e}", file=sys.stderr)
        return 2
    device = SimDevice(settings, args.card, args.screen, args.control)
    try:
        app = App(device)
    except ValueError as e:
        print(f"sim: {e}", file=sys.stderr)
        return 2
    print(f"sim: frame {app.topics.frame}, screen {args.screen}", flush=True)
    run(app, args.seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())

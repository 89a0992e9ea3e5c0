"""The frame's main loop: tick the app for ever, and outlive what nobody foresaw.

An exception that escapes a tick is a bug, but stopping would leave the board at "Code done
running" with a frozen picture until someone pulls the plug. So the loop frees memory, reports
the error (`out_of_memory` for a MemoryError, else `internal`), pauses a moment and goes on.
A tick that fails before it feeds the watchdog, every time, still gets the board reset.
I/O only through the app and its device.
"""

import gc
import time

from .app import App, monotonic_ms
from .errors import FrameError, out_of_memory

try:  # noqa: SIM105 -- the board has no contextlib; annotations only, never evaluated there
    from .device import Device
except ImportError:
    pass

PAUSE_AFTER_ERROR_S = 1


def run(device: "Device", app: "App | None" = None) -> None:
    """Run the frame (code.py calls this with the board); never returns."""
    if app is None:
        app = App(device)
    gc.collect()  # what booting left behind: the first tick starts with a clean heap too
    while True:
        try:
            app.tick(monotonic_ms())
        except Exception as e:  # everything: see the module docstring
            survive(app, e)
        gc.collect()


def survive(app: App, error: Exception) -> None:
    """After an unforeseen error: free memory, say what happened, pause."""
    gc.collect()
    detail = repr(error)[:120]
    print("titanoframe: unexpected error:", detail)
    try:
        if isinstance(error, MemoryError):
            app.report(out_of_memory("main loop", error))
        else:
            app.report(FrameError("internal", detail))
    except Exception:  # reporting is best effort here
        pass
    time.sleep(PAUSE_AFTER_ERROR_S)

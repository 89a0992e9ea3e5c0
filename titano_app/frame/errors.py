"""The one exception the frame reports as an `error` event, and out-of-memory as one. Pure."""


class FrameError(Exception):
    """A problem to report, never a crash: `code` is the event code, `detail` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code + ": " + detail)
        self.code = code
        self.detail = detail


def out_of_memory(where: str, error: BaseException) -> FrameError:
    """The event for a MemoryError caught at `where`: its own code, never `offline`."""
    return FrameError("out_of_memory", (where + ": " + str(error))[:160])

"""The one exception the frame reports as an `error` event. Pure."""


class FrameError(Exception):
    """A problem to report, never a crash: `code` is the event code, `detail` says why."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code + ": " + detail)
        self.code = code
        self.detail = detail

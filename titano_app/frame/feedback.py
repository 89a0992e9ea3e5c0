"""Brief feedback on the screen: a small icon for NOTICE_MS after the bridge answers a like,
hide or send (the `notice` command). Does I/O through the device.
"""

NOTICE_MS = 3000
# The words of the `notice` command, each drawn as its own icon by the device.
NOTICES = ("liked", "unliked", "hidden", "error")

try:  # noqa: SIM105 -- the board has no contextlib
    from .device import Device
except ImportError:  # as in the other modules; annotations are never evaluated on the board
    pass


class Feedback:
    def __init__(self, device: Device) -> None:
        self._device = device
        self.until = -1  # when the icon shown goes; -1: none shown

    def show(self, word: str, now_ms: int) -> None:
        self._device.notice(word)
        self.until = now_ms + NOTICE_MS

    def tick(self, now_ms: int) -> None:
        if 0 <= self.until <= now_ms:
            self.until = -1
            self._device.notice(None)

"""MiniMQTT (8.1) with one change: big payloads are read into a buffer the caller owns. Does
network I/O through the library's socket.

The link (see link.py) lends the buffer through `rx`. MiniMQTT reads a PUBLISH payload with one
call of its read primitive, `_sock_exact_recv`, into a new bytearray of the payload's size; this
class overrides that primitive for reads over SMALL bytes (with the protocol's topics, under 100
bytes, only a payload is that large).
"""

import adafruit_minimqtt.adafruit_minimqtt as MQTT
from adafruit_ticks import ticks_diff, ticks_ms

MAX_MESSAGE = 8192  # bytes: the largest message the contract allows a frame
SMALL = 256  # payloads up to this size are allocated as MiniMQTT does
SCRATCH = 256


class Client(MQTT.MQTT):  # type: ignore[misc]
    """MiniMQTT 8.1 reading big payloads into `rx` (see the module docstring).

    It overrides the library's one read primitive, `_sock_exact_recv`, for reads over SMALL
    bytes: with the protocol's topics (under 100 bytes) only a PUBLISH payload is that large.
    After each message `lost` is the size of a payload that was read and dropped (0: none) and
    `starved` says whether memory was the reason.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.rx: bytearray | None = None  # where the next big payload goes, when set
        self.lost = 0
        self.starved = False
        self._scratch = bytearray(SCRATCH)

    def _sock_exact_recv(self, bufsize: int, timeout: float | None = None) -> object:
        if bufsize <= SMALL:
            return super()._sock_exact_recv(bufsize, timeout)
        self.lost, self.starved = 0, False
        rx = self.rx
        if rx is not None and bufsize <= len(rx):
            view = memoryview(rx)[:bufsize]
            self.rx = None  # taken: until its owner gives it back
            self._fill(view, timeout)
            return view
        if bufsize <= MAX_MESSAGE:
            try:
                return super()._sock_exact_recv(bufsize, timeout)
            except MemoryError:  # nothing was read yet: drop the payload, keep the stream
                self.starved = True
        self.lost = bufsize
        scratch = memoryview(self._scratch)
        while bufsize > 0:
            piece = min(bufsize, SCRATCH)
            self._fill(scratch[:piece], timeout)
            bufsize -= piece
        return scratch[:0]

    def _fill(self, view: memoryview, timeout: float | None) -> None:
        """Read exactly len(view) bytes into `view`, as the library's read does."""
        wait = self._recv_timeout if timeout is None else timeout
        start, got, size = ticks_ms(), 0, len(view)
        while got < size:
            got += self._sock.recv_into(view[got:], size - got)
            if ticks_diff(ticks_ms(), start) > wait * 1000:
                raise MQTT.MMQTTException(f"Unable to receive {size - got} bytes in {wait} s")

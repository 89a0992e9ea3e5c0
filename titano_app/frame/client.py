"""MiniMQTT (8.1) with two changes: big payloads are read into a buffer the caller owns, and its
loop neither keeps a list nor blocks on a keepalive ping. Does network I/O through the
library's socket.

The link (see link.py) lends the buffer through `rx`. MiniMQTT reads a PUBLISH payload with one
call of its read primitive, `_sock_exact_recv`, into a new bytearray of the payload's size; this
class overrides that primitive for reads over SMALL bytes (with the protocol's topics, under 100
bytes, only a payload is that large).

The library's `loop` kept the type of every packet it read in a list, grown in one block each
time it filled: on a command flood that is a block of a kilobyte and more, which a heap busy
with a download lacks (a MemoryError, and the session lost with whatever QoS 1 message was
queued behind the flood). Its keepalive `ping` waited for the broker's answer, which comes
after every message already queued, so on a flood it read for up to `keep_alive` seconds
without returning to the app (no watchdog feed), then gave the session up. Here `loop` keeps
nothing, and a ping is sent without waiting: any packet that arrives after it shows that the
broker is there; the session is given up only when nothing at all arrives for `keep_alive`
seconds after a ping.
"""

import adafruit_minimqtt.adafruit_minimqtt as MQTT
from adafruit_ticks import ticks_diff, ticks_ms

MAX_MESSAGE = 8192  # bytes: the largest message the contract allows a frame
SMALL = 256  # payloads up to this size are allocated as MiniMQTT does
SCRATCH = 256
PUBLISH = 0x30  # MQTT packet types (the library's constants are not all importable on the board)
PINGRESP = 0xD0


class Client(MQTT.MQTT):  # type: ignore[misc]
    """MiniMQTT 8.1 reading big payloads into `rx` (see the module docstring).

    It overrides the library's one read primitive, `_sock_exact_recv`, for reads over SMALL
    bytes: with the protocol's topics (under 100 bytes) only a PUBLISH payload is that large.
    After each message `lost` is the size of a payload that was read and dropped (0: none) and
    `starved` says whether memory was the reason.
    """

    _last_msg_sent_timestamp: int  # the library's: ticks of the last packet sent

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.rx: bytearray | None = None  # where the next big payload goes, when set
        self.lost = 0
        self.starved = False
        self._scratch = bytearray(SCRATCH)
        self._pinged: int | None = None  # ticks of a ping nothing has arrived since
        self.sends = 0  # pieces written to the socket: did a failed call send anything?

    def connect(self, *args: object, **kwargs: object) -> object:
        self._pinged = None
        return super().connect(*args, **kwargs)

    def loop(self, timeout: float = 1.0) -> None:
        """Read and handle what arrives for `timeout` seconds; ping when keepalive is due."""
        self._connected()
        start, wait = ticks_ms(), self.keep_alive * 1000
        while True:
            now = ticks_ms()
            if self._pinged is not None:
                if ticks_diff(now, self._pinged) > wait:
                    raise MQTT.MMQTTException(f"no answer to a ping in {self.keep_alive} s")
            elif ticks_diff(now, self._last_msg_sent_timestamp) >= wait:
                self._send_bytes(MQTT.MQTT_PINGREQ)
                self._pinged = now
                self._last_msg_sent_timestamp = now
            self._wait_for_msg()
            if ticks_diff(ticks_ms(), start) > timeout * 1000:
                return

    def _wait_for_msg(self, timeout: float | None = None) -> int | None:
        op: int | None = super()._wait_for_msg(timeout)
        if op is not None:  # the broker is there: a ping waiting for its answer is answered
            self._pinged = None
        # A ping's answer may now come while the library waits for a SUBACK, an UNSUBACK or a
        # PUBACK, and those waits take any packet but a PUBLISH for a broken session: to them
        # it is one more packet that arrived, as a PUBLISH is.
        return PUBLISH if op == PINGRESP else op

    def _send_bytes(self, buffer: bytes | bytearray | memoryview) -> None:
        self.sends += 1
        super()._send_bytes(buffer)

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

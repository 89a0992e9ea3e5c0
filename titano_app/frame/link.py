"""The frame's MQTT connection (MiniMQTT): status with last will, subscriptions, a small inbox,
page fetches and back-off. Does network I/O; library errors become LinkError.

MiniMQTT reads each message into a new buffer; an 8 KB page then needs a free *contiguous*
block, which a fragmented heap lacks first. So `client.Client` reads payloads over SMALL bytes
into the page buffer, allocated at start, when it is free: a page fetched stays there until the
next fetch; between rounds the app frees it (`free_buffer`) after each look at the inbox, so a
summary lands there too (a view in the inbox). A payload that finds the buffer taken is
allocated as the library does; one that cannot be (MemoryError) or is over MAX_MESSAGE bytes is
read through a small scratch buffer and dropped, so the MQTT stream stays whole and the session
is kept: what was dropped waits in `problems` as the error to report (a summary lost for memory
is asked for again), the others wait in `inbox`, merged by topic (see inbox). A publish that
finds no memory before its first byte is sent is tried once more after a collection, then
keeps the session too (said once, as `out_of_memory`; the caller publishes again when due);
only a failure halfway through a packet, which leaves the stream broken, starts a new one.

A failed connect waits 1, 2, 4, then 8 s before the next try, never longer, and never blocks
that long: the app keeps showing pictures and feeding the 16 s watchdog between.
"""

import gc

from . import topics as topics_mod
from .client import MAX_MESSAGE, Client
from .errors import FrameError, out_of_memory
from .inbox import Inbox
from .manifest import ManifestError

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Callable
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

MAX_BACKOFF_MS = 8000
PAGE_WAIT_MS = 3000
CHECK_MS = 600000  # the retained summary is looked at again this often, between rounds


class LinkError(FrameError):
    def __init__(self, detail: str) -> None:
        super().__init__("offline", detail)


class Link:
    """One frame's MQTT session; `poll(now_ms)` keeps it alive and reconnects when due."""

    def __init__(
        self,
        topics: topics_mod.Topics,
        host: str,
        port: int,
        password: str,
        pool: object,
        ssl_context: object = None,
        feed: Callable[[], None] | None = None,
    ) -> None:
        self.topics = topics
        self.problems: list[FrameError] = []  # dropped messages, for the app to report
        self.inbox = Inbox(topics, self.problems)
        self.resend = False  # a summary was dropped: subscribe to it again when memory allows
        self.checked = False  # the summary on its way is a periodic look (see poll)
        self._checked_ms = 0
        self.dropped = 0
        self._starved = False  # the last publish found no memory before sending a byte
        self.page_buffer = bytearray(MAX_MESSAGE)  # early, while the heap is in one piece
        self.connected = False
        self.connects = 0
        self._feed = feed or (lambda: None)
        self._retry_at = 0
        self._backoff = 1000
        self._page: memoryview | None = None
        self._page_size = 0  # of an oversized page, which is not kept
        self._page_topic = ""
        self._client = Client(
            broker=host,
            port=port,
            username=topics.frame,
            password=password,
            client_id=topics.frame,
            socket_pool=pool,
            ssl_context=ssl_context,
            use_binary_mode=True,
            socket_timeout=0.01,
            recv_timeout=4,
            connect_retries=1,
            keep_alive=30,
        )
        self._client.on_message = self._message
        self._client.will_set(topics.status, topics_mod.OFFLINE, retain=True, qos=1)

    def _message(self, client: Client, topic: str, payload: memoryview | bytearray) -> None:
        lost, client.lost = client.lost, 0  # of this message's payload, if any
        if topic == self._page_topic:  # it stays in the page buffer until the next fetch
            if lost:
                self._page_size = lost
            else:
                self._page = payload  # type: ignore[assignment]
            return
        if lost:
            self.dropped += 1
            self._lost(topic, lost, client.starved)
        elif self._page_topic and isinstance(payload, memoryview):
            try:  # in the page buffer that a page fetch is waiting to fill: copy it out
                self.inbox.put(topic, bytes(payload))
            except MemoryError:
                self._lost(topic, len(payload), True)
            client.rx = self.page_buffer
        else:
            self.inbox.put(topic, payload)  # in the page buffer (a view) until freed

    def free_buffer(self) -> None:
        """No page and no message in the inbox needs the page buffer: big payloads may land."""
        self._client.rx = self.page_buffer

    def _lost(self, topic: str, size: int, starved: bool) -> None:
        """Say why a message was dropped; a summary lost for memory is asked for again."""
        name = self.topics.command_of(topic)
        what = f"{size} bytes"
        if starved:
            what = ("summary" if name is None else name) + f" of {what} dropped"
            self.problems.append(FrameError("out_of_memory", what))
            self.resend = self.resend or topic == self.topics.manifest
        elif topic == self.topics.manifest:
            self.problems.append(ManifestError(f"summary is {what} (limit {MAX_MESSAGE})"))
        elif name is not None:
            # commands.CommandError's code, without importing `commands` at boot (dispatch does)
            detail = f"{name}: payload is {what} (limit {MAX_MESSAGE})"
            self.problems.append(FrameError("bad_command", detail))

    def _fail(self, now_ms: int, what: str, error: Exception) -> LinkError:
        self.connected = False
        self._retry_at = now_ms + self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_MS)
        try:  # noqa: SIM105 -- the board has no contextlib
            self._client._close_socket()  # drop the dead socket; the library has no public way
        except Exception:  # already failing, nothing to add
            pass
        return LinkError(f"{what}: {error}"[:160])

    def poll(self, now_ms: int, wait: float = 0.01) -> bool:
        """Service the connection (or reconnect when due); True while connected."""
        if not self.connected:
            if now_ms < self._retry_at:
                return False
            try:
                self._connect()
            except Exception as e:  # any failure means: try again later
                self._failed(now_ms, "connect", e)
                return False
            self._checked_ms = now_ms  # a connect brings the retained summary anyway
            return True
        try:
            self._client.loop(wait)
        except Exception as e:  # MiniMQTT raises many kinds; all mean down
            self._failed(now_ms, "loop", e)
        due = now_ms - self._checked_ms >= CHECK_MS  # a summary missed, somehow, is noticed
        if (self.resend or due) and self.connected and self._client.rx is not None:
            self.resend, self.checked, self._checked_ms = False, due, now_ms
            gc.collect()
            self.refresh_summary(now_ms)
        return self.connected

    def _failed(self, now_ms: int, what: str, error: Exception) -> LinkError:
        """`_fail`, and a MemoryError reported as what it is. MiniMQTT's own small allocations
        are all that can fail in a session (see Client), and one may have failed halfway
        through a message, so the session is started afresh."""
        if isinstance(error, MemoryError):
            gc.collect()
            self.problems.append(out_of_memory(what, error))
        return self._fail(now_ms, what, error)

    def _connect(self) -> None:
        self._feed()
        self._client.connect(clean_session=True)
        self._feed()
        t = self.topics
        self._client.publish(t.status, topics_mod.ONLINE, retain=True, qos=1)
        self._client.subscribe([(t.manifest, 1), (t.commands, 1), (t.cast, 1)])
        self.connected = True
        self.connects += 1
        self._backoff = 1000

    def publish(self, topic: str, payload: str, retain: bool, now_ms: int) -> bool:
        if not self.connected:
            return False
        for again in (True, False):
            sends = self._client.sends
            try:
                self._client.publish(topic, payload, retain=retain, qos=1 if retain else 0)
                self._starved = False
                return True
            except MemoryError as e:
                if self._client.sends != sends:  # the broker has part of it: start afresh
                    self._failed(now_ms, "publish", e)
                    return False
                if again:  # the packet is built in one piece: a collection often finds room
                    gc.collect()
                    continue
                if not self._starved:  # nothing went out, the session is whole: said once
                    self._starved = True
                    self.problems.append(out_of_memory("publish", e))
            except Exception as e:
                self._failed(now_ms, "publish", e)
                return False
        return False

    def page(self, shard: str, now_ms: Callable[[], int]) -> memoryview | None:
        """The retained page of `shard`, None when the broker sends none in time. It is a view
        of the page buffer: good until the next call.

        Raises LinkError when the connection fails, ManifestError for an oversized page.
        """
        topic = self.topics.page(shard)
        self._page_topic, self._page, self._page_size = topic, None, 0
        self._client.rx = self.page_buffer
        start = now_ms()
        try:
            self._client.subscribe(topic, 1)
            while self._page is None and not self._page_size and now_ms() - start < PAGE_WAIT_MS:
                self._feed()
                self._client.loop(0.01)
            self._client.unsubscribe(topic)
        except Exception as e:
            raise self._failed(now_ms(), "page " + shard, e) from None
        finally:
            self._page_topic = ""
            self._client.rx = None
        got, self._page = self._page, None
        if self._page_size:
            raise ManifestError(f"page {shard} is {self._page_size} bytes (limit {MAX_MESSAGE})")
        return got

    def refresh_summary(self, now_ms: int) -> None:
        """Subscribe to the summary again, so the broker sends the retained one once more."""
        if not self.connected:
            return
        try:
            self._client.unsubscribe(self.topics.manifest)
            self._client.subscribe(self.topics.manifest, 1)
        except Exception as e:
            self._failed(now_ms, "resubscribe", e)

"""The frame's MQTT connection (MiniMQTT): status with last will, subscriptions, a small inbox,
page fetches and back-off. Does network I/O; library errors become LinkError.

Messages arrive in binary mode (no second copy as text) and wait in `inbox` as (topic, bytes)
until the app takes them. A page is kept as the bytearray MiniMQTT read it into (a fresh one per
message), not copied: a copy would double the largest thing a sync holds at its worst moment.
One over MAX_MESSAGE bytes is dropped at once and only its topic and size are kept in
`rejected`, for the app to report; an oversized page makes `page()` raise ManifestError. A
failed connect waits 1, 2, 4, then 8 s before the next try, never longer, and never blocks that
long: the app keeps showing pictures and feeding the 16 s watchdog between.
"""

import adafruit_minimqtt.adafruit_minimqtt as MQTT

from . import topics as topics_mod
from .errors import FrameError
from .manifest import ManifestError

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Callable
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

MAX_MESSAGE = 8192
INBOX_LIMIT = 16  # commands arriving faster than this while busy are dropped
MAX_BACKOFF_MS = 8000
PAGE_WAIT_MS = 3000


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
        self.inbox: list[tuple[str, bytes]] = []
        self.rejected: list[tuple[str, int]] = []  # (topic, size) of oversized messages
        self.dropped = 0
        self.connected = False
        self.connects = 0
        self._feed = feed or (lambda: None)
        self._retry_at = 0
        self._backoff = 1000
        self._page: bytearray | bytes | None = None
        self._page_size = 0  # of an oversized page, which is not kept
        self._page_topic = ""
        self._client = MQTT.MQTT(
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
        self._client.will_set(topics.status, topics_mod.OFFLINE, 1, True)

    def _message(self, _client: object, topic: str, payload: bytearray | bytes) -> None:
        size = len(payload)
        if topic == self._page_topic:
            if size > MAX_MESSAGE:
                self._page_size = size
            else:
                self._page = payload
        elif size > MAX_MESSAGE:
            self.dropped += 1
            if len(self.rejected) < INBOX_LIMIT:
                self.rejected.append((topic, size))
        elif len(self.inbox) < INBOX_LIMIT:
            self.inbox.append((topic, bytes(payload)))
        else:
            self.dropped += 1

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
                self._fail(now_ms, "connect", e)
                return False
            return True
        try:
            self._client.loop(wait)
        except Exception as e:  # MiniMQTT raises many kinds; all mean down
            self._fail(now_ms, "loop", e)
        return self.connected

    def _connect(self) -> None:
        self._feed()
        self._client.connect(clean_session=True)
        self._feed()
        t = self.topics
        self._client.publish(t.status, topics_mod.ONLINE, True, 1)
        self._client.subscribe([(t.manifest, 1), (t.commands, 1)])
        self.connected = True
        self.connects += 1
        self._backoff = 1000

    def publish(self, topic: str, payload: str, retain: bool, now_ms: int) -> bool:
        if not self.connected:
            return False
        try:
            self._client.publish(topic, payload, retain, 1 if retain else 0)
            return True
        except Exception as e:
            self._fail(now_ms, "publish", e)
            return False

    def page(self, shard: str, now_ms: Callable[[], int]) -> bytearray | bytes | None:
        """The retained page of `shard`, None when the broker sends none in time.

        Raises LinkError when the connection fails, ManifestError for an oversized page.
        """
        topic = self.topics.page(shard)
        self._page_topic, self._page, self._page_size = topic, None, 0
        start = now_ms()
        try:
            self._client.subscribe(topic, 1)
            while self._page is None and not self._page_size and now_ms() - start < PAGE_WAIT_MS:
                self._feed()
                self._client.loop(0.01)
            self._client.unsubscribe(topic)
        except Exception as e:
            raise self._fail(now_ms(), "page " + shard, e) from None
        finally:
            self._page_topic = ""
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
            self._fail(now_ms, "resubscribe", e)

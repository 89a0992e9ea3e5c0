"""The manifest summary: which pages (shards) exist, their digests, where pictures come from.

Pure: payload in, a checked `Summary` out, or ManifestError (event code `bad_manifest`) saying
which key is wrong. Wire format in docs/protocol.md §2.

Memory: the `shards` object (up to 256 entries) is read in place, one entry at a time, into one
2 KB bytearray of 8 characters per shard (the app hands in the one the summary before last
used); only the few other keys go through `json.loads`. Parsing
all of it with `json.loads` costs ~30 KB of the board's heap (~34 KB on CPython, kept as long as
the summary is), growing with the manifest's width; this way the largest summary costs 2 KB.
"""

import binascii
import json

from .manifest import EMPTY, FORMATS, HEX, ManifestError, is_hex8, shard_names

try:
    from collections.abc import Iterator
    from typing import Any

    Data = bytes | bytearray | memoryview
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

SUMMARY_LIMIT = 8192
DIGESTS = 256 * 8  # bytes for the digests of the widest manifest
_COLON, _COMMA, _QUOTE, _OPEN = 58, 44, 34, 123  # byte values of ":", ",", '"', "{"
_EMPTY = EMPTY.encode()
_HEX = HEX.encode()


class Summary:
    """A checked summary. `digests` holds 8 characters per shard of the width, EMPTY if unlisted."""

    def __init__(
        self,
        rev: str,
        count: int,
        width: int,
        digests: bytearray,
        url: str,
        fmt: str,
        generated: int,
    ) -> None:
        self.rev = rev
        self.count = count
        self.width = width
        self.digests = digests
        self.url = url
        self.format = fmt
        self.generated = generated
        self.picture_bytes = FORMATS[fmt]

    def digest(self, shard: str) -> str:
        """The digest of a shard's page; EMPTY for a shard the summary does not list."""
        at = _slot(shard) * 8
        return self.digests[at : at + 8].decode()

    def shard_names(self) -> Iterator[str]:
        """Every shard of this width, listed or not: an unlisted one must hold no pictures."""
        return shard_names(self.width)

    def picture_url(self, picture_id: str) -> str:
        return self.url + picture_id + ".bmp"


def _slot(shard: str) -> int:
    return 0 if shard == "all" else int(shard, 16)


def _need(doc: dict[str, object], key: str, ok: bool, what: str) -> None:
    if not ok:
        value = repr(doc.get(key))[:40]
        raise ManifestError(f"summary {key}: {value} is not {what}")


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high  # type() rules out True and False


def _skip(data: Data, at: int) -> int:
    """The index of the first byte at or after `at` that is not JSON white space."""
    # a tuple of ints: the board's bytes may not support `int in bytes`
    while at < len(data) and data[at] in (32, 9, 10, 13):
        at += 1
    return at


def _find(data: Data, needle: bytes, at: int = 0, end: int = -1) -> int:
    """data.find(needle, at, end), also for a memoryview (the page buffer), which has none."""
    end = len(data) if end < 0 else end
    if not isinstance(data, memoryview):
        return data.find(needle, at, end)
    first, size = needle[0], len(needle)
    while at + size <= end:
        if data[at] == first and bytes(data[at : at + size]) == needle:
            return at
        at += 1
    return -1


def _at(data: Data, at: int, byte: int) -> bool:
    return at < len(data) and data[at] == byte


def shards_span(data: Data) -> tuple[int, int]:
    """Where the `shards` object is: (index of its "{", index after its "}"), or (-1, -1).

    The bridge writes compact JSON; an object holding only hex strings has no "}" inside.
    """
    key = _find(data, b'"shards"')
    while key >= 0:  # a value "shards" is followed by "," or "}", the key by ":"
        at = _skip(data, key + 8)
        if _at(data, at, _COLON):
            break
        key = _find(data, b'"shards"', at)
    if key < 0:
        return -1, -1
    at = _skip(data, at + 1)
    end = _find(data, b"}", at)
    if not _at(data, at, _OPEN) or end < 0:
        return -1, -1
    return at, end + 1


def _string(data: Data, at: int, end: int) -> tuple[bytes, int]:
    """The JSON string (no escapes: shard names and digests have none) at `at`, and after it."""
    at = _skip(data, at)
    close = _find(data, b'"', at + 1, end)
    if not _at(data, at, _QUOTE) or close < 0:
        raise ManifestError("summary shards: not an object of strings")
    return bytes(data[at + 1 : close]), close + 1


def _entry_ok(shard: bytes, digest: bytes, width: int) -> bool:
    if len(digest) != 8 or digest.strip(_HEX):
        return False
    if width:
        return len(shard) == width and not shard.strip(_HEX)
    return shard == b"all"


def read_digests(data: Data, start: int, end: int, width: int, into: bytearray) -> bytearray:
    """The digests of the shards object data[start:end] written into `into`, one 8-byte slot
    per shard (DIGESTS bytes: the widest manifest's 256 slots, whatever the width)."""
    slots = into
    for i in range(DIGESTS):  # no bytes of the size made to copy from: the heap is short
        slots[i] = 45  # "-": EMPTY
    at = _skip(data, start + 1)
    while at < end - 1:  # each turn: one "<shard>": "<digest>" and the "," or "}" after it
        shard, at = _string(data, at, end)
        at = _skip(data, at)
        if not _at(data, at, _COLON):
            raise ManifestError("summary shards: not an object of strings")
        digest, at = _string(data, at + 1, end)
        if not _entry_ok(shard, digest, width):
            bad = repr(shard)[:12] + ": " + repr(digest)[:12]
            raise ManifestError(f"summary shards: {bad} in a manifest of width {width}")
        slot = 8 * (int(shard.decode(), 16) if width else 0)
        for i in range(8):  # not a slice assignment: optional on the board
            slots[slot + i] = digest[i]
        at = _skip(data, at)
        if _at(data, at, _COMMA):
            at = _skip(data, at + 1)
            if at == end - 1:
                raise ManifestError("summary shards: a comma before the closing brace")
        elif at != end - 1:
            raise ManifestError("summary shards: not an object of strings")
    return slots


def rev_of(shards: dict[str, str]) -> str:
    """CRC-32 of the sorted `<shard>:<digest>\\n` lines, as the bridge computes `rev`."""
    crc = 0
    for shard in sorted(shards):
        crc = binascii.crc32(f"{shard}:{shards[shard]}\n".encode(), crc)
    return "%08x" % (crc & 0xFFFFFFFF)


def _rev_of_digests(digests: bytearray, width: int) -> str:
    crc = 0
    for shard in shard_names(width):
        at = _slot(shard) * 8
        digest = digests[at : at + 8]
        if digest != _EMPTY:
            crc = binascii.crc32(shard.encode() + b":" + digest + b"\n", crc)
    return "%08x" % (crc & 0xFFFFFFFF)


def _load(data: Data, start: int, end: int) -> dict[str, Any]:
    # everything but the shards object: a few hundred bytes through json.loads
    rest = bytes(data) if start < 0 else bytes(data[:start]) + b"{}" + bytes(data[end:])
    try:
        doc = json.loads(rest.decode())
    except ValueError as e:  # bad UTF-8 is a ValueError too
        raise ManifestError(f"summary is not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ManifestError("summary is not a JSON object")
    return doc


def parse_summary(
    payload: bytes | bytearray | memoryview | str, into: bytearray | None = None
) -> Summary:
    """Parse and check a summary; raises ManifestError and nothing else (but MemoryError).

    Its digests are written into `into` (DIGESTS bytes), when given: the app passes the buffer of
    the summary before last, so a new summary costs no 2 KB block of a fragmented heap.
    """
    if len(payload) > SUMMARY_LIMIT:
        raise ManifestError(f"summary is {len(payload)} bytes (limit {SUMMARY_LIMIT})")
    # read in place (a view of the link's page buffer, or MiniMQTT's bytearray): a copy wants a
    # second block of its size
    data = payload.encode() if isinstance(payload, str) else payload
    start, end = shards_span(data)
    doc = _load(data, start, end)
    _need(doc, "v", _is_int(doc.get("v"), 1, 1), "1, the version this frame reads")
    _need(doc, "rev", is_hex8(doc.get("rev")), "8 hex digits")
    _need(doc, "count", _is_int(doc.get("count"), 0, 10**6), "a picture count")
    _need(doc, "width", _is_int(doc.get("width"), 0, 2), "0, 1 or 2")
    if start < 0 or doc.get("shards") != {}:  # {} is what stands in for the object read here
        raise ManifestError("summary shards: not an object")
    width = doc["width"]
    digests = read_digests(data, start, end, width, into or bytearray(DIGESTS))
    url = doc.get("url", "")
    web = isinstance(url, str) and (url.startswith("http://") or url.startswith("https://"))
    _need(doc, "url", web and url.endswith("/") and len(url) < 512, "an http(s) URL ending in /")
    _need(doc, "format", doc.get("format") in FORMATS, "bmp8 or bmp16")
    _need(doc, "generated", _is_int(doc.get("generated"), 0, 2**40), "a unix time")
    rev = doc["rev"]
    if _rev_of_digests(digests, width) != rev:
        raise ManifestError(f"summary rev {rev} does not match its shards")
    return Summary(rev, doc["count"], width, digests, url, doc["format"], doc["generated"])

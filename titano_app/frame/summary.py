"""The manifest summary: which pages (shards) exist, their digests, where pictures come from.

Pure: payload in, a checked `Summary` out, or ManifestError (event code `bad_manifest`) saying
which key is wrong. Wire format in docs/protocol.md §2. Parsing the largest summary (256 shards,
8 KB) costs about 30 KB of heap on the board; the `Summary` keeps only the shards dict.
"""

import binascii
import json

from .manifest import EMPTY, FORMATS, HEX, ManifestError, as_bytes, is_hex8, shard_names

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Iterator
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

SUMMARY_LIMIT = 8192


class Summary:
    """A checked summary. `shards` maps each non-empty shard to its page digest."""

    def __init__(
        self,
        rev: str,
        count: int,
        width: int,
        shards: dict[str, str],
        url: str,
        fmt: str,
        generated: int,
    ) -> None:
        self.rev = rev
        self.count = count
        self.width = width
        self.shards = shards
        self.url = url
        self.format = fmt
        self.generated = generated
        self.picture_bytes = FORMATS[fmt]

    def digest(self, shard: str) -> str:
        """The digest of a shard's page; EMPTY for a shard the summary does not list."""
        return self.shards.get(shard, EMPTY)

    def shard_names(self) -> Iterator[str]:
        """Every shard of this width, listed or not: an unlisted one must hold no pictures."""
        return shard_names(self.width)

    def picture_url(self, picture_id: str) -> str:
        return self.url + picture_id + ".bmp"


def _need(doc: dict[str, object], key: str, ok: bool, what: str) -> None:
    if not ok:
        value = repr(doc.get(key))[:40]
        raise ManifestError(f"summary {key}: {value} is not {what}")


def _is_int(value: object, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high  # type() rules out True and False


def _check_shards(doc: dict[str, object], width: int) -> None:
    shards = doc.get("shards")
    if not isinstance(shards, dict):
        raise ManifestError("summary shards: not an object")
    for shard, digest in shards.items():
        good = shard == "all" if width == 0 else len(shard) == width and not shard.strip(HEX)
        if not good or not is_hex8(digest):
            bad = repr(shard)[:12] + ": " + repr(digest)[:12]
            raise ManifestError(f"summary shards: {bad} in a manifest of width {width}")


def rev_of(shards: dict[str, str]) -> str:
    """CRC-32 of the sorted `<shard>:<digest>\\n` lines, as the bridge computes `rev`."""
    crc = 0
    for shard in sorted(shards):
        crc = binascii.crc32(f"{shard}:{shards[shard]}\n".encode(), crc)
    return "%08x" % (crc & 0xFFFFFFFF)


def parse_summary(payload: bytes | bytearray | memoryview | str) -> Summary:
    """Parse and check a summary; raises ManifestError and nothing else."""
    if len(payload) > SUMMARY_LIMIT:
        raise ManifestError(f"summary is {len(payload)} bytes (limit {SUMMARY_LIMIT})")
    try:
        doc = json.loads(as_bytes(payload).decode())
    except ValueError as e:  # bad UTF-8 is a ValueError too
        raise ManifestError(f"summary is not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ManifestError("summary is not a JSON object")
    _need(doc, "v", _is_int(doc.get("v"), 1, 1), "1, the version this frame reads")
    _need(doc, "rev", is_hex8(doc.get("rev")), "8 hex digits")
    _need(doc, "count", _is_int(doc.get("count"), 0, 10**6), "a picture count")
    _need(doc, "width", _is_int(doc.get("width"), 0, 2), "0, 1 or 2")
    _check_shards(doc, doc["width"])
    url = doc.get("url", "")
    web = isinstance(url, str) and (url.startswith("http://") or url.startswith("https://"))
    _need(doc, "url", web and url.endswith("/") and len(url) < 512, "an http(s) URL ending in /")
    _need(doc, "format", doc.get("format") in FORMATS, "bmp8 or bmp16")
    _need(doc, "generated", _is_int(doc.get("generated"), 0, 2**40), "a unix time")
    rev = doc["rev"]
    if rev_of(doc["shards"]) != rev:
        raise ManifestError(f"summary rev {rev} does not match its shards")
    return Summary(
        rev, doc["count"], doc["width"], doc["shards"], url, doc["format"], doc["generated"]
    )

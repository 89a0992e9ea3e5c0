"""A frame's manifest: versions, pages, digests, the summary, and what to publish. Pure, no I/O.

Wire formats (docs/protocol.md §2). The board's parser must match these byte for byte.

Page — topic `<base>/<frame>/manifest/<shard>`, UTF-8 text, one line per picture::

    <picture id> <version>\\n

sorted by picture id in plain byte order (`+` < `-` < digits < letters), a single space, `\\n`
after every line including the last, nothing else: no header, no blank line, no `\\r`.
A picture id is a lower-case UUID or two joined by `+`; a version is 8 lower-case hex digits.

Shard — the last `width` characters of the picture id (of the first id of a pair `a+b`), so
`width` 1 gives shards `0`…`f`, width 2 gives `00`…`ff`, width 0 gives the single shard `all`.

Digest — CRC-32 (ISO-HDLC, the zlib/`binascii.crc32` polynomial) of a page's exact payload bytes,
written as 8 lower-case hex digits with leading zeros: `format(binascii.crc32(page), "08x")`.

Rev — the same CRC-32 of the text made of one line `<shard>:<digest>\\n` per non-empty shard,
shards sorted in byte order. An empty manifest has rev `00000000` (the CRC of no bytes).

Summary — topic `<base>/<frame>/manifest`, compact JSON (no spaces), at most 8192 bytes, keys in
this order::

    {"v":1,"rev":"…","count":N,"width":W,"shards":{"<shard>":"<digest>",…},
     "url":"…/pictures/","format":"bmp8","generated":<unix time>}

`shards` lists every non-empty shard (sorted); `count` is the number of lines over all pages.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common import topics
from common.config import ImageProfile

PAGE_LIMIT = 8192
SUMMARY_LIMIT = 8192
MAX_WIDTH = 2
SUMMARY_VERSION = 1

UUID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PICTURE_ID_RE = re.compile(rf"\A{UUID_PATTERN}(\+{UUID_PATTERN})?\Z")
VERSION_RE = re.compile(r"\A[0-9a-f]{8}\Z")


def crc_hex(data: bytes) -> str:
    """CRC-32 of `data` as 8 lower-case hex digits: `format(binascii.crc32(data), "08x")`."""
    return format(binascii.crc32(data) & 0xFFFFFFFF, "08x")


def profile_key(profile: ImageProfile) -> str:
    """The part of a render profile that changes a picture's bytes, as one stable string.

    `pair_portraits` is left out on purpose: it decides which picture ids exist, not how a given
    id renders, so toggling it must not make every landscape re-download.
    """
    return json.dumps([profile.format, profile.fit, profile.caption], separators=(",", ":"))


def version(checksum: str, thumbhash: str | None, profile_key: str) -> str:
    """8 hex digits that change with any of the three fields and with nothing else.

    First 4 bytes of SHA-1 over the JSON list `[checksum, thumbhash or "", profile_key]`; JSON
    quoting keeps the fields apart whatever characters they hold.
    """
    data = json.dumps([checksum, thumbhash or "", profile_key], separators=(",", ":"))
    return hashlib.sha1(data.encode()).hexdigest()[:8]


def pair_version(first: str, second: str) -> str:
    """The version of a pair `a+b`, from the versions of its two assets (order matters)."""
    return hashlib.sha1(f"{first}+{second}".encode()).hexdigest()[:8]


def shard_of(picture_id: str, width: int) -> str:
    """The shard a picture belongs to: last `width` characters of its first asset id, or "all"."""
    if width == 0:
        return "all"
    return picture_id.split("+", 1)[0][-width:]


def page_bytes(entries: Mapping[str, str]) -> bytes:
    """Page payload for {picture id: version}: `<id> <version>\\n` lines sorted by id."""
    return "".join(f"{pid} {entries[pid]}\n" for pid in sorted(entries)).encode()


def _line_len(picture_id: str) -> int:
    return len(picture_id) + 1 + 8 + 1


def choose_width(pictures: Mapping[str, str]) -> int:
    """Smallest width (0, 1, 2) with no page over PAGE_LIMIT bytes; 2 when none is enough."""
    for width in range(MAX_WIDTH):
        sizes: dict[str, int] = {}
        for pid in pictures:
            shard = shard_of(pid, width)
            sizes[shard] = sizes.get(shard, 0) + _line_len(pid)
        if max(sizes.values(), default=0) <= PAGE_LIMIT:
            return width
    return MAX_WIDTH


def _fit_pages(
    pictures: Mapping[str, str], taken: Mapping[str, float] | None, width: int
) -> dict[str, dict[str, str]]:
    """Group by shard; a page over the limit keeps its most recently taken pictures that fit.

    Pages are fixed by id, so keeping the newest per page is the same as keeping the newest
    pictures overall that fit. Pictures without a taken date go first; ties fall back to id.
    """
    groups: dict[str, list[str]] = {}
    for pid in pictures:
        groups.setdefault(shard_of(pid, width), []).append(pid)
    when = taken or {}
    pages: dict[str, dict[str, str]] = {}
    for shard, ids in groups.items():
        if sum(_line_len(p) for p in ids) <= PAGE_LIMIT:
            # The usual case: the page fits whole, so there is nothing to choose by date.
            pages[shard] = {pid: pictures[pid] for pid in ids}
            continue
        ids.sort(key=lambda p: (-when.get(p, float("-inf")), p))
        page: dict[str, str] = {}
        size = 0
        for pid in ids:
            if size + _line_len(pid) <= PAGE_LIMIT:
                page[pid] = pictures[pid]
                size += _line_len(pid)
        pages[shard] = page
    return pages


@dataclass(frozen=True)
class Manifest:
    """One frame's manifest as built from its pictures. `pages` holds only non-empty pages."""

    pages: Mapping[str, bytes]
    digests: Mapping[str, str]
    rev: str
    count: int
    width: int
    url: str
    format: str
    generated: int
    summary: bytes
    dropped: int
    sources: str | None = None


def rev_of(digests: Mapping[str, str]) -> str:
    """CRC-32 hex of the sorted `<shard>:<digest>\\n` lines."""
    return crc_hex("".join(f"{s}:{digests[s]}\n" for s in sorted(digests)).encode())


def build(
    pictures: Mapping[str, str],
    taken: Mapping[str, float] | None,
    url: str,
    fmt: str,
    generated: int,
    sources: str | None = None,
) -> Manifest:
    """Build the manifest for {picture id: version}.

    Capacity: a page holds 178 single pictures, so width 2 averages up to ~45,000; since ids
    fall into shards at random, the fullest page overflows first: drops begin near 36,000.

    `taken` (unix time per picture id) only matters past width 2's capacity, to decide which
    pictures to drop; `dropped` says how many were. Raises ValueError when the summary itself
    would pass SUMMARY_LIMIT (only an absurdly long `url` can do that).
    """
    width = choose_width(pictures)
    pages = {s: page_bytes(p) for s, p in _fit_pages(pictures, taken, width).items() if p}
    count = sum(page.count(b"\n") for page in pages.values())
    digests = {s: crc_hex(pages[s]) for s in sorted(pages)}
    rev = rev_of(digests)
    doc = {"v": SUMMARY_VERSION, "rev": rev, "count": count, "width": width, "shards": digests}
    doc |= {"url": url, "format": fmt, "generated": generated}
    if sources is not None:
        doc["src"] = sources  # the source config it was built from: frames ignore it
    summary = json.dumps(doc, separators=(",", ":")).encode()
    if len(summary) > SUMMARY_LIMIT:
        raise ValueError(f"manifest summary is {len(summary)} bytes (limit {SUMMARY_LIMIT})")
    dropped = len(pictures) - count
    return Manifest(
        pages, digests, rev, count, width, url, fmt, generated, summary, dropped, sources
    )


@dataclass(frozen=True)
class Summary:
    """A summary read back from the broker."""

    rev: str
    count: int
    width: int
    shards: Mapping[str, str]
    url: str
    format: str
    generated: int
    sources: str | None = None  # `src`: digest of the source config (bridge.brake)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _digests(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        return None
    for shard, digest in value.items():
        if not (topics.SHARD_RE.match(shard) and isinstance(digest, str)):
            return None
        if not VERSION_RE.match(digest):
            return None
    return value


def parse_summary(payload: bytes) -> Summary | None:
    """Parse a retained summary; None when empty, malformed or of another version. Never raises."""
    try:
        doc = json.loads(payload.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting raises the last
        return None
    if not isinstance(doc, dict) or doc.get("v") != SUMMARY_VERSION:
        return None
    rev, url, fmt, shards = doc.get("rev"), doc.get("url"), doc.get("format"), doc.get("shards")
    count, width, generated = (
        _int(doc.get("count")),
        _int(doc.get("width")),
        _int(doc.get("generated")),
    )
    if not (isinstance(rev, str) and VERSION_RE.match(rev)):
        return None
    if not (isinstance(url, str) and isinstance(fmt, str)) or (shards := _digests(shards)) is None:
        return None
    if count is None or generated is None or width is None or not 0 <= width <= MAX_WIDTH:
        return None
    src = doc.get("src")
    sources = src if isinstance(src, str) and VERSION_RE.match(src) else None
    return Summary(rev, count, width, shards, url, fmt, generated, sources)


def parse_page(payload: bytes) -> dict[str, str] | None:
    """Parse a page into {picture id: version}; b"" → {}; None when malformed. Never raises."""
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return None
    if text and not text.endswith("\n"):
        return None
    entries: dict[str, str] = {}
    for line in text.split("\n")[:-1]:
        pid, sep, ver = line.partition(" ")
        if not sep or not PICTURE_ID_RE.match(pid) or not VERSION_RE.match(ver) or pid in entries:
            return None
        entries[pid] = ver
    return entries


@dataclass(frozen=True)
class Retained:
    """What the broker holds for one frame: the summary payload and every non-empty page."""

    summary: bytes | None
    pages: Mapping[str, bytes]


@dataclass(frozen=True)
class Step:
    """One retained publish. `shard` None is the summary; an empty payload clears a page."""

    shard: str | None
    payload: bytes

    def topic(self, base: str, frame: str) -> str:
        if self.shard is None:
            return topics.manifest(base, frame)
        return topics.manifest_page(base, frame, self.shard)


@dataclass(frozen=True)
class PublishPlan:
    """Ordered steps: changed pages, then the summary, then clearing pages no longer listed."""

    steps: tuple[Step, ...]

    @property
    def pages_published(self) -> int:
        return sum(1 for s in self.steps if s.shard is not None and s.payload)

    @property
    def pages_cleared(self) -> int:
        return sum(1 for s in self.steps if s.shard is not None and not s.payload)

    @property
    def summary_published(self) -> bool:
        return any(s.shard is None for s in self.steps)

    def messages(self, base: str, frame: str) -> list[tuple[str, bytes]]:
        """(topic, payload) pairs in publishing order; publish each retained at QoS 1."""
        return [(step.topic(base, frame), step.payload) for step in self.steps]


def _summary_current(old: bytes | None, new: Manifest) -> bool:
    """Does the retained summary already say everything a frame cares about?

    `generated` is left out: it changes on every build and no frame acts on it.
    """
    parsed = parse_summary(old) if old else None
    if parsed is None:
        return False
    mine = (new.rev, new.count, new.width, dict(new.digests), new.url, new.format, new.sources)
    theirs = (
        parsed.rev,
        parsed.count,
        parsed.width,
        dict(parsed.shards),
        parsed.url,
        parsed.format,
        parsed.sources,
    )
    return mine == theirs


def diff(old: Retained, new: Manifest) -> PublishPlan:
    """What to publish so the broker holds `new`, given what it holds now.

    Pages are compared by their exact bytes, so a page lost from the broker (or a run cut short
    between pages and summary) is healed; when the broker already holds `new` the plan is empty.
    """
    changed = [Step(s, new.pages[s]) for s in sorted(new.pages) if old.pages.get(s) != new.pages[s]]
    summary = [] if _summary_current(old.summary, new) else [Step(None, new.summary)]
    cleared = [Step(s, b"") for s in sorted(old.pages) if s not in new.pages and old.pages[s]]
    return PublishPlan(tuple(changed + summary + cleared))

"""Manifest pages on the frame: CRC check, line walk, and the diff against what the card holds.

Pure: payload bytes in, values out, no I/O. Wire format in docs/protocol.md §2: a page is
`<picture id> <version>\\n` lines sorted by picture id, one page per shard (the last `width` hex
digits of the picture id, or "all"); `summary` reads the JSON that names the pages.

Memory: a page (at most 8 KB) is walked in place, as bytes or as the bytearray it arrived in;
nothing here builds a list that grows with the page or the library. Each line costs a short copy
and two short strings while it is being looked at.
"""

import binascii

from .errors import FrameError

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Iterable, Iterator
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

PAGE_LIMIT = 8192
# Bytes of one 480x320 picture in each format the renderer makes.
FORMATS = {"bmp8": 154678, "bmp16": 307266}
# Stands for the digest of a shard the summary does not list: its page is empty.
EMPTY = "--------"

ADD = "add"  # download (id, version)
REMOVE = "remove"  # the id is not listed any more: delete now, frees room
REPLACE = "replace"  # an outdated version of a listed id: delete once the listed one is on the card

HEX = "0123456789abcdef"
_HEX = b"0123456789abcdef"
_HEX_DASH = b"0123456789abcdef-"
_DASH, _PLUS, _SPACE, _NEWLINE = 45, 43, 32, 10  # byte values of "-", "+", " ", "\\n"


class ManifestError(FrameError):
    """A summary or page the frame cannot use (event code `bad_manifest`)."""

    def __init__(self, detail: str) -> None:
        super().__init__("bad_manifest", detail)


def crc_hex(data: bytes | bytearray | memoryview) -> str:
    """CRC-32 of `data` as 8 lower-case hex digits, the contract's digest format."""
    return "%08x" % (binascii.crc32(data) & 0xFFFFFFFF)


def page_ok(payload: bytes | bytearray | memoryview, digest: str) -> bool:
    """True when `payload` is the page the summary's `digest` names (EMPTY: no bytes)."""
    if digest == EMPTY:
        return len(payload) == 0
    return crc_hex(payload) == digest


def is_hex8(value: object) -> bool:
    return isinstance(value, str) and len(value) == 8 and not value.strip(HEX)


def _uuid_ok(raw: bytes) -> bool:
    return (
        len(raw) == 36
        and raw[8] == _DASH
        and raw[13] == _DASH
        and raw[18] == _DASH
        and raw[23] == _DASH
        and raw.count(b"-") == 4
        and not raw.strip(_HEX_DASH)
    )


def _id_ok(raw: bytes) -> bool:
    if len(raw) == 36:
        return _uuid_ok(raw)
    return len(raw) == 73 and raw[36] == _PLUS and _uuid_ok(raw[:36]) and _uuid_ok(raw[37:])


def valid_id(text: str) -> bool:
    """True for a picture id: a lower-case UUID, or two joined by `+`."""
    return len(text) in (36, 73) and _id_ok(text.encode())


def tail_of(picture_id: str) -> str:
    """The last two hex digits of the (first) asset id: the card folder of the picture."""
    return picture_id[34:36]


def lines(
    payload: bytes | bytearray | memoryview | str, tail: str | None = None
) -> Iterator[tuple[str, str]]:
    """Yield (picture id, version) for each line, in order; only ids in folder `tail` if given.

    The payload is read in place, also as the bytearray MiniMQTT hands over: a line is 46 or 83
    bytes, so its end is found by indexing (the board's bytearray has no find or strip), and
    only the line being looked at is copied. Raises ManifestError at the first bad line
    (length, id, version, order).
    """
    data = payload.encode() if isinstance(payload, str) else payload
    t0 = t1 = -1
    if tail is not None:
        t0, t1 = ord(tail[0]), ord(tail[1])
    start, number, prev, size = 0, 0, "", len(data)
    while start < size:
        number += 1
        end = _line_end(data, start, size)
        if end < 0:
            raise ManifestError(f"page line {number}: not '<picture id> <version>\\n'")
        if t0 >= 0 and (data[start + 34] != t0 or data[start + 35] != t1):
            start = end + 1
            continue
        line = bytes(data[start:end])
        id_len = end - start - 9
        raw = line[:id_len]
        if line[id_len] != _SPACE or not _id_ok(raw):
            raise ManifestError(f"page line {number}: bad picture id")
        version = line[id_len + 1 :]
        if version.strip(_HEX):
            raise ManifestError(f"page line {number}: bad version")
        picture_id = raw.decode()
        if picture_id <= prev:
            raise ManifestError(f"page line {number}: {picture_id} out of order")
        prev = picture_id
        yield picture_id, version.decode()
        start = end + 1


def _line_end(data: bytes | bytearray | memoryview, start: int, size: int) -> int:
    """Index of the newline ending the line at `start`, -1 if there is none where a line of a
    single id or of a pair ends. (A pair's byte 46 is a hex digit or "-", never a newline; a
    newline inside a line fails the id or version check of that line.)"""
    end = start + 45
    if end < size and data[end] == _NEWLINE:
        return end
    end = start + 82
    return end if end < size and data[end] == _NEWLINE else -1


def check_page(payload: bytes | bytearray | memoryview | str, shard: str) -> int:
    """Validate a whole page of `shard` before acting on it; returns its number of pictures."""
    if len(payload) > PAGE_LIMIT:
        raise ManifestError(f"page {shard} is {len(payload)} bytes (limit {PAGE_LIMIT})")
    count = 0
    for picture_id, _version in lines(payload):
        if shard != "all" and picture_id[36 - len(shard) : 36] != shard:
            raise ManifestError(f"page {shard} lists {picture_id} of another shard")
        count += 1
    return count


def _step(it: Iterator[tuple[str, str]]) -> tuple[str, str] | None:
    # next() with a default is an optional feature of the board's interpreter
    try:
        return next(it)
    except StopIteration:
        return None


def diff_page(
    payload: bytes | bytearray | memoryview | str,
    held: Iterable[tuple[str, str]],
    tail: str | None = None,
) -> Iterator[tuple[str, str, str]]:
    """Merge a page with what the card holds; yield (ADD|REMOVE|REPLACE, picture id, version).

    `held` is (picture id, version) sorted by id, from one card folder `tail` (or from all the
    folders of the page when `tail` is None). A new version yields ADD then REPLACE of the old:
    download first, so the old picture keeps showing if the download fails.
    """
    page = lines(payload, tail)
    have = iter(held)
    p, h = _step(page), _step(have)
    while True:
        if p is None:
            if h is None:
                return
            yield REMOVE, h[0], h[1]
            h = _step(have)
        elif h is None or p[0] < h[0]:
            yield ADD, p[0], p[1]
            p = _step(page)
        elif h[0] < p[0]:
            yield REMOVE, h[0], h[1]
            h = _step(have)
        else:
            found, stale = False, None
            while h is not None and h[0] == p[0]:
                if h[1] == p[1]:
                    found = True
                elif stale is None:
                    stale = [h[1]]
                else:
                    stale.append(h[1])
                h = _step(have)
            if not found:
                yield ADD, p[0], p[1]
            for old in stale or ():
                yield REPLACE, p[0], old
            p = _step(page)


def shard_names(width: int) -> Iterator[str]:
    """Every shard of a manifest of this width: "all", "0".."f" or "00".."ff"."""
    if width == 0:
        yield "all"
    elif width == 1:
        for i in range(16):
            yield f"{i:x}"
    else:
        for i in range(256):
            yield f"{i:02x}"


def shard_dirs(shard: str) -> Iterator[str]:
    """The card folders (two hex digits) holding the pictures of `shard`."""
    if len(shard) == 2:
        yield shard
    elif shard == "all":
        for i in range(256):
            yield f"{i:02x}"
    else:
        for i in range(16):
            yield f"{i:x}{shard}"

"""Portrait pairing: which portrait photos share a slide, stable from one poll to the next. Pure.

A portrait on a landscape screen wastes two thirds of it, so with `image.pair_portraits` two
portraits are shown side by side as one picture `a+b`. Landscapes (and squares) stay single.

Stability matters more than the best possible pairs: every changed pair is a picture the frame
must download and one it loses. So pairing takes the pictures the frame holds now (`previous`,
read back from its manifest) and keeps every pair whose two photos are still portraits in the
set. Only the portraits left over are paired afresh. Adding one photo therefore creates at most
one pair, and removing one breaks its pair and creates at most one; nothing else moves.

Fresh pairs come from a deterministic matching over the leftovers in (taken, id) order, so
photos taken close together tend to share a slide and a first run needs no history:

1. Give every two neighbours a pseudo-random weight, a hash of their two ids.
2. Pair the neighbours whose weight is lower than both adjacent weights (a local minimum);
   such edges never touch, so this is a valid matching.
3. Take those still unpaired, in the same order, and repeat until at most one is left.

Without `previous` this is a pure function of the set whose changes stay near the changed
photo (a handful of pairs), but only `previous` bounds them to one or two.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence

# (asset id, width, height, taken as unix time). Width and height as shown, after EXIF rotation.
Asset = tuple[str, int, int, float]

SEPARATOR = "+"


def is_portrait(width: int, height: int) -> bool:
    return height > width


def assets_of(picture_id: str) -> list[str]:
    """The asset ids a picture shows: `a` → [a], `a+b` → [a, b]."""
    return picture_id.split(SEPARATOR)


def _weight(left: str, right: str) -> bytes:
    return hashlib.blake2b(f"{left}{SEPARATOR}{right}".encode(), digest_size=8).digest()


def _local_minima(ids: Sequence[str]) -> list[int]:
    """Indexes i whose edge (ids[i], ids[i+1]) weighs less than both neighbouring edges."""
    weights = [(_weight(a, b), a) for a, b in itertools.pairwise(ids)]
    picked = []
    for i, w in enumerate(weights):
        left_ok = i == 0 or w < weights[i - 1]
        right_ok = i == len(weights) - 1 or w < weights[i + 1]
        if left_ok and right_ok:
            picked.append(i)
    return picked


def _match(ids: list[str]) -> list[tuple[str, str]]:
    """Pairs over `ids` (already in order) by rounds of local-minimum matching."""
    pairs: list[tuple[str, str]] = []
    remaining = ids
    while len(remaining) > 1:
        picked = _local_minima(remaining)
        taken: set[int] = set()
        for i in picked:
            pairs.append((remaining[i], remaining[i + 1]))
            taken.update((i, i + 1))
        remaining = [pid for i, pid in enumerate(remaining) if i not in taken]
    return pairs


def match(ids: list[str]) -> list[tuple[str, str]]:
    """Fresh pairs over portraits in (taken, id) order: what `pair_portraits` does with the
    portraits no kept pair holds."""
    return _match(ids)


def _kept(previous: Iterable[str], portraits: set[str]) -> list[tuple[str, str]]:
    """Previous pairs whose two assets are both still portraits in the set, each asset once."""
    kept: list[tuple[str, str]] = []
    used: set[str] = set()
    for picture_id in previous:
        ids = assets_of(picture_id)
        if len(ids) != 2 or ids[0] == ids[1]:
            continue
        a, b = ids
        if a in portraits and b in portraits and a not in used and b not in used:
            kept.append((a, b))
            used.update(ids)
    return kept


def pair_portraits(assets: Sequence[Asset], previous: Iterable[str] = ()) -> list[str]:
    """Picture ids for `assets`: landscapes single, portraits paired as `a+b`.

    `previous` is the list of picture ids the frame's manifest holds now; its pairs are kept
    while both photos remain portraits in `assets`. A fresh pair `a+b` has `a` earlier by
    (taken, id). The result is ordered by (taken, id) of each picture's first asset. At most
    one portrait among those not kept from `previous` stays single. Duplicate ids count once.
    """
    order = sorted({a[0]: a for a in assets}.values(), key=lambda a: (a[3], a[0]))
    rank = {a[0]: i for i, a in enumerate(order)}
    portraits = [a[0] for a in order if is_portrait(a[1], a[2])]
    pairs = _kept(previous, set(portraits))
    kept = {pid for pair in pairs for pid in pair}
    pairs += _match([pid for pid in portraits if pid not in kept])
    paired = {pid for pair in pairs for pid in pair}
    # Not interned: the interpreter's table of interned strings never shrinks, and frames
    # that pair alike share one book (`bridge.book`), so one string per pair already.
    firsts = {a: f"{a}{SEPARATOR}{b}" for a, b in pairs}
    pictures: list[tuple[int, str]] = [(rank[a], pid) for a, pid in firsts.items()]
    pictures += [(rank[a[0]], a[0]) for a in order if a[0] not in paired]
    return [pid for _, pid in sorted(pictures)]

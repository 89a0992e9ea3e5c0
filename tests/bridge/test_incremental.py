"""Patched manifests against full rebuilds: byte-identical retained messages on randomized
libraries and change sequences, and the work a change costs (frames evaluated, pages rebuilt)."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, replace

import pytest

from bridge import guests as guests_mod
from bridge.asset import Asset
from bridge.frames import FrameState, Mirror, Versions
from bridge.selection import Selection
from bridge.sources import Policy
from bridge.sync import FAVORITES, MEMORIES, Library, _differences
from common import manifest
from common.config import Exclude, FrameConfig, ImageProfile, Source

URL = "http://renderer.test/v1/frames/{}/pictures/"
NAMES = {("album", "Trips"): "a1", ("person", "Ann"): "p1", ("tag", "frame-skip"): "t1",
         ("tag", "bursts"): "t2"}  # fmt: skip
KEYS = [FAVORITES, MEMORIES, ("album", "a1"), ("person", "p1"), ("tag", "t1"), ("tag", "t2")]
FRAMES = (
    FrameConfig("fav", sources=(Source("favorites", True),)),
    # Configured as "fav": the two share one book while their pages are the same.
    FrameConfig("fav-too", sources=(Source("favorites", True),)),
    # The same sources as "fav": the two share one selection.
    FrameConfig(
        "fav-pairs",
        sources=(Source("favorites", True),),
        image=ImageProfile("bmp8", pair_portraits=True),
    ),
    FrameConfig(
        "pairs",
        sources=(Source("favorites", True), Source("album", "Trips")),
        exclude=(Exclude("tag", "frame-skip"),),
        image=ImageProfile(pair_portraits=True),
    ),
    FrameConfig(
        "people",
        sources=(Source("person", "Ann"), Source("tag", "bursts", stacks="all")),
        image=ImageProfile(caption="date", pair_portraits=True),
    ),
    FrameConfig("memories", sources=(Source("memories", True),), image=ImageProfile("bmp8")),
    FrameConfig("album", sources=(Source("album", "Trips"),), image=ImageProfile(fit="cover")),
)


def _id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128)))


def _asset(rng: random.Random, asset_id: str | None = None) -> Asset:
    portrait = rng.random() < 0.5
    return Asset(
        id=asset_id or _id(rng),
        checksum=f"c{rng.getrandbits(32)}",
        thumbhash=None if rng.random() < 0.03 else f"t{rng.getrandbits(16)}",
        width=3000 if not portrait else 2000,
        height=2000 if not portrait else 3000,
        taken=float(rng.randrange(10**9, 2 * 10**9)),
        visibility="archive" if rng.random() < 0.03 else "timeline",
        trashed=rng.random() < 0.02,
        stacked=rng.random() < 0.05,
    )


def _library(rng: random.Random, size: int) -> Library:
    assets = {a.id: a for a in (_asset(rng) for _ in range(size))}
    ids = list(assets)
    members = {key: frozenset(rng.sample(ids, rng.randrange(len(ids) // 2 + 1))) for key in KEYS}
    return Library(assets=assets, members=members, ids=dict(NAMES), walks=1, generation=1)


def _change(rng: random.Random, old: Library) -> Library:
    """A new library after a handful of random changes, as a poll would replace it."""
    new = replace(old, assets=dict(old.assets), members=dict(old.members), touched=None)
    ids = list(new.assets)
    for _ in range(rng.choice((1, 1, 2, 5, 40))):
        what = rng.random()
        key = rng.choice(KEYS)
        if what < 0.3:  # a photo joins or leaves a source
            target = rng.choice(ids)
            members = new.members[key]
            new.members[key] = members - {target} if target in members else members | {target}
        elif what < 0.5:  # edited, rotated, trashed, stacked, …
            target = rng.choice(ids)
            new.assets[target] = _asset(rng, target)
        elif what < 0.55:  # a new upload
            asset = _asset(rng)
            new.assets[asset.id] = asset
            new.members[key] = new.members[key] | {asset.id}
        elif what < 0.58:  # deleted for good
            target = rng.choice(ids)
            new.assets.pop(target, None)
        elif what < 0.62:  # a large clean-up: the removal guard's business
            kept = sorted(new.members[key])
            new.members[key] = frozenset(kept[: len(kept) // 3])
        elif what < 0.64:  # yesterday's memories leave at midnight
            before = new.members[MEMORIES]
            new.members[MEMORIES] = frozenset(rng.sample(ids, len(ids) // 4))
            new.expired = before - new.members[MEMORIES]
        elif what < 0.7:  # a full walk that finds nothing new (it may confirm a held removal)
            new.walks += 1
    new.touched = _differences(old, new)
    changed = (new.members, new.assets) != (old.members, old.assets)
    new.generation = old.generation + (1 if changed else 0)
    return new


@dataclass
class Run:
    """One frame driven as `bridge.manifests` drives it, against its own mirror."""

    state: FrameState
    mirror: Mirror

    def step(self, lib: Library, now: int, deliver: bool = True) -> int:
        """Evaluate and publish; the number of messages published."""
        outcome = self.state.evaluate(lib, Policy(), self.mirror.retained(), self.mirror.version,
                                      now)  # fmt: skip
        if outcome.plan is None or not deliver:
            return 0
        for step in outcome.plan.steps:
            self.mirror.put(step.shard, step.payload)
        self.state.settle(lib, self.mirror.version)
        return len(outcome.plan.steps)


def _guests(rng: random.Random, lib: Library, now: int) -> dict[str, guests_mod.Guest]:
    """Photos sent to the frames: some from outside their sources, some they hold anyway; or
    none (all left)."""
    if rng.random() < 0.5:
        return {}
    ids = [_id(rng) for _ in range(rng.randrange(3))]
    ids += rng.sample(sorted(lib.assets), min(len(lib.assets), rng.randrange(3)))
    return {
        i: guests_mod.Guest(f"{rng.getrandbits(32):08x}", now - rng.randrange(99), now + 600)
        for i in ids
    }


def _runs(incremental: bool, max_removal: float) -> list[Run]:
    shared: dict[str, Versions] = {}
    selections: dict[object, Selection] = {}
    runs = []
    for frame in FRAMES:
        key = manifest.profile_key(frame.image)
        versions = shared.setdefault(key, Versions(key))
        selection = selections.setdefault((frame.sources, frame.exclude), Selection())
        url = URL.format(frame.id)
        state = FrameState(
            frame, url, max_removal, versions=versions, incremental=incremental, selection=selection
        )
        runs.append(Run(state, Mirror()))
    return runs


# 127 once caught the brake forgetting, on patches that changed nothing of a frame's, that a
# source had emptied: the rebuild then held a drop the patch let through.
@pytest.mark.parametrize("seed", [*range(40), 127])
def test_patched_manifests_are_byte_identical_to_full_rebuilds(seed: int) -> None:
    rng = random.Random(seed)
    # Sizes cross a page's capacity (width 0 → 1 near 178 pictures) as the library changes.
    lib = _library(rng, rng.choice((20, 150, 400, 1200)))
    max_removal = rng.choice((0.5, 1.0))
    full, patched = _runs(False, max_removal), _runs(True, max_removal)
    now = 1_700_000_000
    guests: dict[str, guests_mod.Guest] = {}
    shared = 0  # steps where "fav" and "fav-too" shared one book
    for _ in range(60):
        deliver = rng.random() > 0.05  # now and then a publish fails: both retry it
        if rng.random() < 0.15:  # guests come and go (on both paths at the same steps)
            guests, known = _guests(rng, lib, now), guests.keys()
            for run in patched + full:
                run.state.set_guests(guests, known=known)
        for ours, theirs in zip(patched, full, strict=True):
            sent = ours.step(lib, now, deliver), theirs.step(lib, now, deliver)
            assert sent[0] == sent[1], ours.state.frame.id
            assert ours.mirror.retained() == theirs.mirror.retained(), ours.state.frame.id
        book = patched[0].state.book
        shared += book is not None and book is patched[1].state.book
        lib = _change(rng, lib)
        now += 30
    assert sum(r.state.patches for r in patched) > sum(r.state.rebuilds for r in patched)
    assert shared > 0


def test_growing_past_sixteen_pages_patches_into_the_wider_shards() -> None:
    rng = random.Random(99)
    lib = _library(rng, 2600)
    lib.members[FAVORITES] = frozenset(lib.assets)
    full, patched = _runs(False, 1.0), _runs(True, 1.0)
    widths = set()
    for step in range(40):
        for ours, theirs in zip(patched[:1], full[:1], strict=True):
            ours.step(lib, step), theirs.step(lib, step)
            assert ours.mirror.retained() == theirs.mirror.retained()
            widths.add(ours.state.book.width if ours.state.book else -1)
        new = replace(lib, assets=dict(lib.assets), members=dict(lib.members))
        for _ in range(20):
            asset = _asset(rng).replace(trashed=False, thumbhash="t", stacked=False)
            new.assets[asset.id] = asset
        new.members[FAVORITES] = frozenset(new.assets)
        new.touched = _differences(lib, new)
        new.generation += 1
        lib = new
    assert widths >= {1, 2}


def _shown(rng: random.Random, n: int) -> dict[str, Asset]:
    """`n` photos every frame may show (no trash, previews made, no stacks)."""
    made = (_asset(rng).replace(trashed=False, thumbhash="t", stacked=False,
                    visibility="timeline") for _ in range(n))  # fmt: skip
    return {a.id: a for a in made}


def _scale(frames: int) -> tuple[Library, list[Run], list[str]]:
    """30,000 favourites; half the frames show them (every other one pairs portraits), the
    other half show an album of 1,000 other photos. Built once and published."""
    rng = random.Random(7)
    assets = _shown(rng, 31_000)
    ids = list(assets)
    members = {FAVORITES: frozenset(ids[:30_000]), ("album", "a1"): frozenset(ids[30_000:])}
    lib = Library(assets=assets, members=members, ids=dict(NAMES), walks=1, generation=1)
    shared: dict[str, Versions] = {}
    selections: dict[object, Selection] = {}
    runs = []
    for i in range(frames):
        source = Source("favorites", True) if i % 2 == 0 else Source("album", "Trips")
        frame = FrameConfig(f"f{i}", sources=(source,),
                            image=ImageProfile(pair_portraits=i % 4 == 2))  # fmt: skip
        versions = shared.setdefault(manifest.profile_key(frame.image), Versions("k"))
        selection = selections.setdefault(frame.sources, Selection())
        state = FrameState(frame, URL.format(frame.id), 0.5, versions=versions, selection=selection)
        runs.append(Run(state, Mirror()))
    for run in runs:
        run.step(lib, 1)
    return lib, runs, ids


def _work(runs: list[Run]) -> tuple[int, int, int]:
    states = [r.state for r in runs]
    return (sum(s.rebuilds for s in states), sum(s.pages_built for s in states),
            sum(1 for s in states if s.book is None))  # fmt: skip


@pytest.mark.parametrize("what", ["edited", "added", "removed"])
def test_one_change_in_30000_photos_with_10_frames_writes_the_page_once_per_frames_alike(
    what: str,
) -> None:
    lib, runs, ids = _scale(10)
    rebuilt, pages, _ = _work(runs)
    assert rebuilt == 10 and pages == 5 * 256 + 5 * 16  # start-up: every frame whole
    read = sum(r.state.read_back for r in runs)
    assert read == 10
    new = replace(lib, assets=dict(lib.assets), members=dict(lib.members))
    target = ids[12_345]
    if what == "edited":
        new.assets[target] = lib.assets[target].replace(checksum="edited")
    elif what == "removed":
        new.members[FAVORITES] = lib.members[FAVORITES] - {target}
    else:
        added = lib.assets[target].replace(id=str(uuid.UUID(int=1)))
        new.assets[added.id] = added
        new.members[FAVORITES] = lib.members[FAVORITES] | {added.id}
    new.touched = _differences(lib, new)
    new.generation += 1
    sent = [run.step(new, 2) for run in runs]
    rebuilt, written, _ = _work(runs)
    assert rebuilt == 10  # no frame rebuilt whole
    # The five favourites frames are two kinds alike (three show singles, two pair
    # portraits): each kind writes the one page the photo is on once, for all its frames (a
    # pair broken by the removal may put its partner on one more); the album frames write
    # nothing.
    assert 2 <= written - pages <= 2 + 1
    assert sum(r.state.patches for r in runs) == 10
    # The removal brake judged the removal from the change, not from the published pages.
    assert sum(r.state.read_back for r in runs) == read
    assert sent == [2, 0] * 5  # that page and the summary, on the frames that show it

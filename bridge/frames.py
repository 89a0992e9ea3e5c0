"""One frame's manifest over time: its photos, their versions, the guard against sudden mass
removals, and the publish plan. Pure apart from a lock: values in, values out, `now` passed in.

`Mirror` holds what the broker retains for a frame (read back at start, kept current by the
bridge's own subscriptions and acknowledged publishes), so a manifest is only re-published
where it differs from what is there.

Removal guard: a poll that would take away more than `max_removal` of the photos a frame's
published manifest holds is held back by the frame's `bridge.brake.Brake` until a person or
time confirms it. Yesterday's memories leaving at midnight are expected and do not count.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bridge import brake, pairing
from bridge import guests as guests_mod
from bridge.asset import Asset
from bridge.book import Book
from bridge.selection import POOL, Selection, Sources
from bridge.sources import Policy
from bridge.sync import Library
from common import manifest
from common.config import FrameConfig

log = logging.getLogger(__name__)


class Mirror:
    """The retained manifest messages of one frame, as the broker holds them. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._summary: bytes | None = None
        self._pages: dict[str, bytes] = {}
        self.version = 0  # bumped on every change of content

    def put(self, shard: str | None, payload: bytes, ours: bool = False) -> None:
        """A summary (`shard` None) or page as the broker now holds it; b"" means cleared.

        `ours`: the bytes this process built and published, kept even over equal bytes read
        back, so the mirror and the frame's last build share one copy of every page."""
        with self._lock:
            if shard is None:
                before = self._summary
                self._summary = payload or None
                changed = before != self._summary
            else:
                # Interned: a few hundred names, which every frame's pages and every page
                # heard back would otherwise each hold a string of.
                shard = sys.intern(shard)
                before = self._pages.get(shard)
                if not payload:
                    self._pages.pop(shard, None)
                elif ours or payload != before:  # an echo of our publish keeps our bytes
                    self._pages[shard] = payload
                changed = before != self._pages.get(shard)
            if changed:
                self.version += 1

    def adopt(self, pages: Mapping[str, bytes]) -> None:
        """Hold the bytes of `pages` (a build) where the broker holds equal ones: after a
        restart the retained pages were read back as copies of their own, one per frame,
        where the frames' builds share one."""
        with self._lock:
            held = self._pages
            for shard, page in pages.items():
                before = held.get(shard)
                if before is not None and before is not page and before == page:
                    held[shard] = page

    def clear(self) -> None:
        with self._lock:
            self._summary, self._pages = None, {}
            self.version += 1

    def retained(self) -> manifest.Retained:
        with self._lock:
            return manifest.Retained(self._summary, dict(self._pages))


class PageCache:
    """Parsed pages, so a rebuild re-parses only the pages that changed, and frames that
    show the same pages (after a restart, each frame's read back from the broker) parse them
    once. Keyed by each page's length and hash rather than its bytes, which the mirrors hold;
    `sweep` forgets the pages no rebuild asked for since the last sweep."""

    def __init__(self) -> None:
        self._pages: dict[tuple[int, int], tuple[str, ...]] = {}
        self._used: set[tuple[int, int]] = set()
        self.parsed = 0  # pages parsed, for tests

    def __len__(self) -> int:
        return len(self._pages)

    def ids(self, page: bytes, assets: Mapping[str, Asset]) -> tuple[str, ...]:
        key = (len(page), hash(page))
        ids = self._pages.get(key)
        if ids is None:
            # The library's own id strings where it holds the photo, not one more copy.
            ids = tuple(_held_id(p, assets) for p in manifest.parse_page(page) or ())
            self._pages[key] = ids
            self.parsed += 1
        self._used.add(key)
        return ids

    def sweep(self) -> None:
        """Forget the pages not asked for since the last sweep: once patches take over, no
        rebuild reads the published pages back, and none are kept."""
        self._pages = {k: v for k, v in self._pages.items() if k in self._used}
        self._used = set()


def _held_id(picture_id: str, assets: Mapping[str, Asset]) -> str:
    asset = assets.get(picture_id)
    return picture_id if asset is None else asset.id


def published_pictures(
    retained: manifest.Retained,
    cache: PageCache | None = None,
    assets: Mapping[str, Asset] | None = None,
) -> list[str]:
    """Picture ids of the manifest the broker holds (the pages its summary lists), as the
    strings `assets` holds where it holds the photo."""
    summary = manifest.parse_summary(retained.summary) if retained.summary else None
    shards = list(summary.shards) if summary else list(retained.pages)
    pages = cache if cache is not None else PageCache()
    ids: list[str] = []
    for shard in shards:
        ids.extend(pages.ids(retained.pages.get(shard, b""), assets or {}))
    return ids


def select(frame: FrameConfig, lib: Library, policy: Policy) -> dict[str, Asset]:
    """The photos the frame should show: its sources' union, minus exclusions and photos the
    policy leaves out (trashed, archived, partners', not a still image, no preview yet). Of a
    stack only the primary, as Immich shows it, unless a source that holds a member asks for
    every member (`stacks: all`)."""
    chosen: set[str] = set()
    whole_stacks: set[str] = set()
    for source in frame.sources:
        key = lib.key(source.kind, source.value)
        if key is not None:
            members = lib.members.get(key, frozenset())
            chosen |= members
            if source.stacks == "all":
                whole_stacks |= members
    for exclude in frame.exclude:
        key = lib.key(exclude.kind, exclude.value)
        if key is not None:
            chosen -= lib.members.get(key, frozenset())
    found = {}
    for asset_id in chosen:
        asset = lib.assets.get(asset_id)
        if asset is None or not policy.allows(asset):
            continue
        if not asset.stacked or asset_id in whole_stacks:
            found[asset_id] = asset
    return found


class Versions:
    """Asset versions for one render profile, remembered so a rebuild hashes only changes.

    The first profile to version an asset remembers it in the asset itself (`Asset.memo`):
    with one profile, the usual set-up, that costs no table at all. Another profile's versions
    of it go to this object's table."""

    def __init__(self, profile_key: str) -> None:
        self.profile_key = profile_key
        self._known: dict[str, tuple[Asset, str]] = {}  # id → (the asset versioned, version)

    def of(self, asset: Asset) -> str:
        key = self.profile_key
        value = asset.memo(key)
        if value is not None:
            return value
        hit = self._known.get(asset.id)
        if hit is not None and (hit[0] is asset or _same_content(hit[0], asset)):
            return hit[1]
        value = manifest.version(asset.checksum, asset.thumbhash, key)
        if not asset.remember(key, value):
            self._known[asset.id] = (asset, value)
        return value

    def forget_others(self, keep: Mapping[str, object]) -> None:
        """Drop remembered versions of photos no longer kept, once they pile up."""
        if len(self._known) > 2 * len(keep) + 1000:
            self._known = {k: v for k, v in self._known.items() if k in keep}


def _same_content(one: Asset, other: Asset) -> bool:
    return one.checksum == other.checksum and one.thumbhash == other.thumbhash


def pictures(
    frame: FrameConfig, assets: Mapping[str, Asset], previous: Iterable[str], versions: Versions
) -> tuple[dict[str, str], dict[str, float]]:
    """{picture id: version} and {picture id: taken} for the frame's photos."""
    if not frame.image.pair_portraits:
        return (
            {a.id: versions.of(a) for a in assets.values()},
            {a.id: a.taken for a in assets.values()},
        )
    shapes = [(a.id, a.width, a.height, a.taken) for a in assets.values()]
    ids = pairing.pair_portraits(shapes, previous)
    found: dict[str, str] = {}
    taken: dict[str, float] = {}
    for pid in ids:
        parts = pairing.assets_of(pid)
        ver = [versions.of(assets[p]) for p in parts]
        found[pid] = ver[0] if len(ver) == 1 else manifest.pair_version(ver[0], ver[1])
        taken[pid] = assets[parts[0]].taken
    return found, taken


@dataclass(frozen=True)
class Outcome:
    """What a rebuild decided. `plan` None: nothing to publish (unchanged or held)."""

    plan: manifest.PublishPlan | None
    built: manifest.Manifest | None = None
    assets: int = 0
    held: int = 0  # photos a held drop would remove
    whole: bool = False  # built by a full rebuild, not patched


class FrameState:
    """Decides, poll after poll, what one frame's manifest should be and what to publish.

    A change patches the last build (`bridge.book`) when the broker holds exactly that build
    and the library says which photos it touched; otherwise, and with `incremental` False, the
    whole manifest is rebuilt (`rebuild`). Both give the same bytes."""

    def __init__(
        self,
        frame: FrameConfig,
        url: str,
        max_removal: float,
        removal_hold: float = 0.0,
        *,
        versions: Versions | None = None,
        incremental: bool = True,
        selection: Selection | None = None,
        pages: PageCache | None = None,
    ) -> None:
        self.frame = frame
        self.url = url
        self.brake = brake.Brake(frame.id, max_removal, removal_hold)
        self.versions = versions or Versions(manifest.profile_key(frame.image))
        self.incremental = incremental
        self.selection = selection or Selection()
        # Shared by all frames, swept by `bridge.manifests` (not `or`: an empty cache is falsy).
        self.pages = pages if pages is not None else PageCache()
        self._settled: tuple[int, int, int, int, int] | None = None
        self.book: Book | None = None  # shared with the frames whose pages are the same
        self.last: manifest.Manifest | None = None  # this frame's last build
        # (generation, mirror, guests) the book is out at
        self._book_at: tuple[int, int, int] | None = None
        # Work done, for tests and the benchmark: whole rebuilds, patches, pages written, and
        # published manifests read back whole (what the removal brake of a patch does without).
        self.rebuilds = self.patches = self.pages_built = self.read_back = 0
        # Photos sent to the frame (bridge.guests); every id ever a guest, so one leaving at
        # its time is an expected removal, not one for the guard.
        self.guests: dict[str, guests_mod.Guest] = {}
        self.guest_ids: set[str] = set()
        self.guest_rev = 0

    def set_guests(self, guests: Mapping[str, guests_mod.Guest], known: Iterable[str] = ()) -> None:
        """The guests to list now; `known` adds ids that were guests (expired ones)."""
        self.guest_ids |= guests.keys()
        self.guest_ids.update(known)
        if guests != self.guests:
            self.guests = dict(guests)
            self.guest_rev += 1

    def settle(self, lib: Library, mirror_version: int) -> None:
        """Everything planned is published: a confirmed removal is out, and rebuilding is
        skipped until the inputs change."""
        # Only now: were the publish to fail, the next tick must not hold the drop anew.
        self.brake.settled()
        self._settled = self._inputs(lib, mirror_version)
        if self.book is not None:
            self._book_at = (lib.generation, mirror_version, self.guest_rev)

    def _inputs(self, lib: Library, mirror_version: int) -> tuple[int, int, int, int, int]:
        # A walk with no news changes nothing, unless it may confirm a held removal.
        walks = lib.walks if self.brake.hold is not None else -1
        return (lib.generation, walks, mirror_version, self.brake.epoch, self.guest_rev)

    def evaluate(
        self,
        lib: Library,
        policy: Policy,
        retained: manifest.Retained,
        mirror_version: int,
        now: int,
    ) -> Outcome:
        if lib.walks == 0 or self._settled == self._inputs(lib, mirror_version):
            return Outcome(None)  # before a first full walk the bridge knows nothing yet
        at, self._book_at = self._book_at, None
        # Guests that came or went since the book was built are only put right by a rebuild.
        patchable = at == (lib.generation - 1, mirror_version, self.guest_rev)
        patchable = patchable and self.brake.hold is None
        if self.incremental and patchable and lib.touched is not None:
            outcome = self._patch(lib, policy, retained, mirror_version, now)
            if outcome is not None:
                return outcome
        return self.rebuild(lib, policy, retained, mirror_version, now)

    def _patch(
        self,
        lib: Library,
        policy: Policy,
        retained: manifest.Retained,
        mirror_version: int,
        now: int,
    ) -> Outcome | None:
        """Patch the last build with the photos the poll touched; None: rebuild instead."""
        book = self.book
        assert book is not None
        if not self.selection.advance(lib, Sources.of(self.frame, lib), policy):
            self.book = None
            return None
        if self._guests_in(self.selection.moved or (), self.selection.selected):
            self.book = None
            return None
        change = book.patch(self.versions)
        if change is None:
            self.book = None
            return None
        self.patches += 1
        self.pages_built += change.pages
        self.brake.observe(self.frame, lib)  # which sources have photos, as a rebuild notes
        if not change.pictures:
            self.settle(lib, mirror_version)
            return Outcome(None)
        if change.removed:
            # The guard judges removals: with nothing removed from what the broker holds (this
            # build) there is nothing for it to hold back. What it holds is the last build,
            # so the guard counts from the change, not from the whole published manifest;
            # unless guests were ever sent: which of its photos were guests only the whole
            # manifest tells.
            if self.guest_ids:
                held = self._judge(lib, policy, retained, book.selected, now)
            else:
                counts = (change.before, change.gone)
                src = self.last.sources if self.last else None
                held = self.brake.judge_patch(self.frame, lib, policy, src, counts, now)
            if held:
                self.book = None
                self._settled = self._inputs(lib, mirror_version)
                return Outcome(None, assets=len(book.selected), held=held)
        # The broker holds the last build (checked by `evaluate`), so the plan is made against
        # it rather than by parsing back `retained`: the same plan, for less.
        assert self.last is not None  # set with the book
        built, plan = book.manifest(self.last, self.url, self.frame.image.format, now)
        self.last = built
        if not plan.steps:
            self.settle(lib, mirror_version)
        return Outcome(plan if plan.steps else None, built, len(book.selected))

    def _judge(
        self,
        lib: Library,
        policy: Policy,
        retained: manifest.Retained,
        assets: Mapping[str, Asset],
        now: int,
        previous: list[str] | None = None,
    ) -> int:
        """The brake's judgement against the whole published manifest, guests left out."""
        if previous is None:
            previous = published_pictures(retained, self.pages, lib.assets)
        self.read_back += 1
        hosts = [p for p in previous if p not in self.guest_ids]  # a guest leaving is expected
        return self.brake.judge(self.frame, lib, policy, retained, hosts, assets, now)

    def _guests_in(self, moved: Iterable[str], selected: Mapping[str, Asset]) -> bool:
        """Whether a guest is among the photos that moved, or (pairing portraits, where a
        patch re-pairs photos that did not move) among those shown anyway: its line, its own
        or the frame's, is then the rebuild's to make."""
        guests = self.guests
        if not guests:
            return False
        if any(a in guests for a in moved):
            return True
        return self.frame.image.pair_portraits and any(g in selected for g in guests)

    def rebuild(
        self,
        lib: Library,
        policy: Policy,
        retained: manifest.Retained,
        mirror_version: int,
        now: int,
    ) -> Outcome:
        """The full rebuild: select, pair, version and page the frame's whole library. What
        every change cost before manifests were patched, and still the reference for them."""
        self.rebuilds += 1
        self.book = None
        if not self.incremental:
            assets = select(self.frame, lib, policy)
        elif self.selection.generation == lib.generation:
            assets = self.selection.selected  # another frame with these sources just made it
        else:
            assets = select(self.frame, lib, policy)
            self.selection.replace(assets, lib.generation)
        previous = published_pictures(retained, self.pages, lib.assets)
        held = self._judge(lib, policy, retained, assets, now, previous)
        if held:
            self._settled = self._inputs(lib, mirror_version)
            return Outcome(None, assets=len(assets), held=held)
        found, taken = pictures(self.frame, assets, previous, self.versions)
        guests_mod.merge(found, taken, self.guests)
        self.versions.forget_others(lib.assets)  # shared by the frames of one render profile
        src = brake.sources_digest(self.frame, policy.include_archived, policy.include_partners)
        built = manifest.build(found, taken, self.url, self.frame.image.format, now, src)
        self.pages_built += len(built.pages)
        if self.incremental:
            pages = {s: POOL.share(p, built.digests[s]) for s, p in built.pages.items()}
            built = dataclasses.replace(built, pages=pages)
        if self.incremental and not built.dropped:
            self.book, self.last = self._book(found, built), built
        if built.dropped:
            log.warning(
                "frame %s: %d pictures do not fit in a manifest; keeping the %d newest",
                self.frame.id,
                built.dropped,
                built.count,
            )
        plan = manifest.diff(retained, built)
        if not plan.steps:
            self.settle(lib, mirror_version)
        return Outcome(plan if plan.steps else None, built, len(assets), whole=True)

    def _book(self, found: Iterable[str], built: manifest.Manifest) -> Book:
        """The book of this build: the one another frame made of the same pages, or a new one."""
        key = (id(self.versions), self.frame.image.pair_portraits)
        book = self.selection.books.get(key)
        if book is None or not book.same(built):
            book = Book(self.selection, found, built, key[1])
            self.selection.books[key] = book
        return book

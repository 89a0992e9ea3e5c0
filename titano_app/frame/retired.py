"""Retired pictures: pictures that left the manifest, off the slideshow but kept on the card until
their room is wanted for a listed picture or their time is up. Does file I/O (through `files`).

Layout, beside the store's p/ (see store)::

    <root>/r/<day>/<tail>/<lead>/<picture id>.<version>.bmp

<day> is the day (unix time // 86400) the picture was retired, "0" while the board's clock is
not known yet (dated the first time `expire` runs with a clock). <tail>/<lead> are the picture's
folders under p/, so a picture moves between p/ and r/ by one rename: it is never copied, and a
power cut leaves it in one place or the other, whole. A retired picture is found by its exact
path, one stat per day folder; `evict` lists one day folder, one folder and one leaf at a time,
and removes the empty folders it meets, so no listing grows with the card.

Nothing here deletes the picture on screen (`keep`, its file name, set by the slideshow): the
board reads its file for as long as it is shown.
"""

import os

from . import files

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Callable
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

DAY_S = 86400
UNDATED = 0
TIDY_MS = 60000  # how often `tidy` looks for pictures past their time
TIDY_BATCH = 16  # deleted at most per look: the slideshow and MQTT go on between looks


def day_of(unix_time: int | None) -> int:
    return UNDATED if unix_time is None else unix_time // DAY_S


def _rmdir(path: str) -> bool:
    """Remove an empty folder; False when it is not empty or not there."""
    try:
        os.rmdir(path)
        return True
    except OSError:
        return False


class Retired:
    """The retired pictures under `root` (<card>/r) of the pictures under `pics` (<card>/p),
    kept `keep_days` days. `days`: the day folders, oldest first."""

    def __init__(
        self,
        root: str,
        pics: str,
        keep_days: int = 30,
        unix_time: Callable[[], int | None] | None = None,
    ) -> None:
        self.root = root
        self._skip = len(pics) + 1  # a picture's path under p/: <tail>/<lead>/<name>
        self.keep_days = keep_days
        self._unix = unix_time or (lambda: None)
        self.days: list[int] = []
        self.keep: str | None = None  # the file name of the picture on screen
        self._tidy_at = 0

    def boot(self) -> None:
        files.mkdir(self.root)
        self.days = sorted(int(n) for n in files.listdir(self.root) if n.isdigit())

    def put(self, src: str) -> bool:
        """Retire the picture file `src` (under p/) today; False when it is not there."""
        if not files.exists(src):
            return False
        self._put(src, src[self._skip :], day_of(self._unix()))
        return True

    def _put(self, src: str, rel: str, day: int) -> None:
        base = f"{self.root}/{day}"
        files.mkdir(base)
        files.mkdir(base + "/" + rel[:2])
        files.mkdir(base + "/" + rel[:4])
        files.rename(src, base + "/" + rel)
        if day not in self.days:
            self.days.append(day)
            self.days.sort()

    def take(self, dest: str) -> bool:
        """Move the retired picture back to its path `dest` under p/; False when no day holds
        it. One stat per day folder."""
        rel = dest[self._skip :]
        for day in self.days:
            src = f"{self.root}/{day}/{rel}"
            if files.exists(src):
                folder = dest[: self._skip + 2]
                files.mkdir(folder)
                files.mkdir(folder + "/" + rel[3])
                files.rename(src, dest)
                return True
        return False

    def tidy(self, now_ms: int) -> int:
        """Every TIDY_MS (again at the next call while a batch was full): `expire` today."""
        if now_ms < self._tidy_at:
            return 0
        unix = self._unix()
        try:
            gone = 0 if unix is None else self.expire(day_of(unix), TIDY_BATCH)
        except OSError:  # the card: the next look tries again
            gone = 0
        self._tidy_at = now_ms + (0 if gone == TIDY_BATCH else TIDY_MS)
        return gone

    def evict(self) -> bool:
        """Delete one retired picture, of the oldest day first, never `keep`; False when there
        is none left to delete."""
        for day in list(self.days):
            path = self._first(day, self.keep)
            if path is not None and files.remove(path):
                return True
        return False

    def expire(self, today: int, limit: int) -> int:
        """Delete pictures retired more than `keep_days` days before `today`, date those
        retired before the clock was known `today`: `limit` of them at most (a big card: the
        watchdog); returns how many."""
        gone = self._redate(today, limit) if self.days and self.days[0] == UNDATED < today else 0
        for day in [d for d in self.days if d < today - self.keep_days]:
            while gone < limit:
                path = self._first(day, self.keep)
                if path is None or not files.remove(path):
                    break
                gone += 1
        return gone

    def _first(self, day: int, keep: str | None) -> str | None:
        """A picture of `day` other than `keep`; None when there is none. Removes the empty
        folders it meets (a day folder too, which then leaves `days`)."""
        base = f"{self.root}/{day}"
        for tail in files.listdir(base):
            folder = base + "/" + tail
            for lead in files.listdir(folder):
                leaf = folder + "/" + lead
                for name in files.listdir(leaf):
                    if name != keep:
                        return leaf + "/" + name
                _rmdir(leaf)
            _rmdir(folder)
        if (_rmdir(base) or not files.exists(base)) and day in self.days:
            self.days.remove(day)
        return None

    def _redate(self, today: int, limit: int) -> int:
        """Move up to `limit` undated pictures to `today`; returns how many."""
        moved = 0
        while moved < limit:
            path = self._first(UNDATED, None)
            if path is None:
                break
            self._put(path, path[len(self.root) + 3 :], today)  # after "/0/"
            moved += 1
        return moved

"""Exhaustive shuffle: every picture once per cycle, in a new order each cycle. Pure.

Pictures are numbers 0..n-1 (the card's enumeration, see `store.Store.nth`). A cycle walks a keyed
permutation of 0..m-1, m the power of two at or above n, skipping numbers >= n (less than two
steps per picture). The permutation is a few rounds of bijections on m's bits (add a key,
multiply by an odd key, xor-shift), so memory is a handful of integers whatever n is, and every
product stays a small integer on the board. Each cycle draws new keys.

- No picture twice in a row across cycles: when a new cycle would start with the picture just
  shown, that picture moves to second place.
- `previous` walks back through the last HISTORY pictures; `next` then walks forward again
  before drawing new ones. A picture shown by id (`shown`) joins the history as the current
  one, so `previous` goes back to the picture before it rather than skipping it.
- When n changes (pictures added or removed mid-cycle): while m stays the same the cycle goes
  on with the same keys (numbers already walked past are not shown again this cycle, new numbers
  the walk has not reached yet are); when m changes a new cycle starts. Either way the history
  is cleared, since numbers may now mean other pictures, and the caller may say which number is
  on screen now so the next picture differs from it.
"""

import random

try:  # noqa: SIM105 -- the board has no contextlib
    from collections.abc import Callable
except ImportError:  # the board has no collections.abc; it never evaluates annotations
    pass

HISTORY = 8
_ROUNDS = 3


def _bits_for(n: int) -> int:
    bits = 0
    while (1 << bits) < n:  # int.bit_length is not on the board
        bits += 1
    return bits


class Shuffle:
    """Pictures 0..n-1 in shuffled cycles. `randbits(k)` gives k random bits (k <= 16)."""

    def __init__(self, n: int, randbits: Callable[[int], int] | None = None) -> None:
        self._rand = randbits or random.getrandbits
        self._history: list[int] = []
        self._back = 0
        self._last = -1
        self._resize(n)

    @property
    def n(self) -> int:
        return self._n

    def _resize(self, n: int) -> None:
        self._n = max(0, n)
        self._bits = _bits_for(self._n)
        self._mask = (1 << self._bits) - 1
        self._shift = (self._bits + 1) // 2 or 1
        self._new_cycle()

    def _new_cycle(self) -> None:
        mult_bits = max(1, min(12, 30 - self._bits))  # x * mult stays below 2**30: small ints
        keys = []
        for _ in range(_ROUNDS):
            keys.append(self._rand(16) & self._mask if self._bits else 0)
            keys.append(self._rand(mult_bits) | 1)
        self._keys = keys
        self._pos = 0
        self._started = False  # nothing drawn yet this cycle
        self._deferred = -1

    def _permute(self, x: int) -> int:
        mask, shift, keys = self._mask, self._shift, self._keys
        for r in range(0, 2 * _ROUNDS, 2):
            x = (x + keys[r]) & mask
            x = (x * keys[r + 1]) & mask
            x ^= x >> shift
        return x

    def _draw(self) -> int:
        while True:
            if self._deferred >= 0 and self._started:
                value, self._deferred = self._deferred, -1
                return value
            if self._pos > self._mask:
                if self._deferred >= 0:  # the cycle ended before anything else came up
                    self._started = True
                    continue
                self._new_cycle()
            x = self._permute(self._pos)
            self._pos += 1
            if x >= self._n:
                continue
            if not self._started and x == self._last and self._n > 1:
                self._deferred = x  # would repeat the picture on screen: show it second
                continue
            self._started = True
            return x

    def next(self) -> int | None:
        """The number of the next picture to show; None when there are none."""
        if self._n == 0:
            return None
        if self._back:
            self._back -= 1
            return self._history[-1 - self._back]
        value = self._draw()
        self._last = value
        self._history.append(value)
        if len(self._history) > HISTORY:
            self._history.pop(0)
        return value

    def previous(self) -> int | None:
        """The picture shown before the current one; None when the history goes no further."""
        if self._back + 1 >= len(self._history):
            return None
        self._back += 1
        return self._history[-1 - self._back]

    def shown(self, value: int) -> None:
        """Picture `value` was put on screen by id: it becomes the current one."""
        if not 0 <= value < self._n:
            return
        if self._back:  # shown while walking back: the pictures ahead of it are left behind
            del self._history[len(self._history) - self._back :]
            self._back = 0
        if not self._history or self._history[-1] != value:
            self._history.append(value)
            if len(self._history) > HISTORY:
                self._history.pop(0)
        self._last = value

    def resize(self, n: int, current: int | None = None) -> None:
        """The number of pictures changed; `current` is the number now on screen, if any."""
        n = max(0, n)
        if n != self._n:
            if _bits_for(n) == self._bits and n > 0:
                self._n = n
                if self._deferred >= n:
                    self._deferred = -1
            else:
                self._resize(n)
        self._history = [] if current is None or current >= n else [current]
        self._back = 0
        self._last = -1 if current is None else current

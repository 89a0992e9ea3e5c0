"""The small icons the frame draws over the picture for a `notice` (commands.NOTICES): shapes
as rows of bits (1 = lit, most significant bit leftmost; small ints take no heap on the board),
turned into pixels here, drawn by the device (the board's hw, the simulator). Pure.

Each icon sits on a black square, so it reads on a light picture as on a dark one.
"""

try:  # noqa: SIM105 -- the board has no contextlib
    from typing import Any
except ImportError:  # the board has no typing; it never evaluates annotations
    pass

SCALE = 2
WIDTH = 11  # bits a row
PAD = 3  # black pixels around the shape
X, Y = 6, 6  # top left corner on the screen (the offline cross is top right)

_HEART = (
    0b00110001100,
    0b01111011110,
    0b11111111111,
    0b11111111111,
    0b01111111110,
    0b00111111100,
    0b00011111000,
    0b00001110000,
    0b00000100000,
)
_OUTLINE = (
    0b00110001100,
    0b01001010010,
    0b10000100001,
    0b10000000001,
    0b01000000010,
    0b00100000100,
    0b00010001000,
    0b00001010000,
    0b00000100000,
)
_HIDDEN = (  # an eye, struck through
    0b10000000000,
    0b01011111000,
    0b00110001100,
    0b01001110010,
    0b10010101001,
    0b01001111010,
    0b00110001100,
    0b00011111010,
    0b00000000001,
)
_ERROR = (
    0b00000100000,
    0b00001110000,
    0b00001010000,
    0b00010101000,
    0b00010101000,
    0b00100100100,
    0b00100000100,
    0b01000100010,
    0b11111111111,
)
SHAPES = {
    "liked": (0xFF3060, _HEART),
    "unliked": (0xD0D0D0, _OUTLINE),
    "hidden": (0xFFFFFF, _HIDDEN),
    "error": (0xFFA000, _ERROR),
}


def size(word: str) -> tuple[int, int]:
    """(width, height) in pixels of the icon for `word`, its black square included."""
    rows = SHAPES[word][1]
    return WIDTH * SCALE + 2 * PAD, len(rows) * SCALE + 2 * PAD


def color(word: str) -> int:
    return SHAPES[word][0]


def paint(bitmap: Any, word: str) -> None:
    """Set to 1 the pixels of the shape in `bitmap` (a displayio.Bitmap of `size(word)`, or
    anything indexed by `[x, y]`), allocating nothing."""
    for row, bits in enumerate(SHAPES[word][1]):
        for col in range(WIDTH):
            if bits >> (WIDTH - 1 - col) & 1:
                for dy in range(SCALE):
                    for dx in range(SCALE):
                        bitmap[PAD + col * SCALE + dx, PAD + row * SCALE + dy] = 1

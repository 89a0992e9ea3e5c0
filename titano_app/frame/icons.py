"""The small icons the frame draws over the picture for a `notice` (commands.NOTICES): shapes
as text, turned into pixels here, drawn by the device (the board's hw, the simulator). Pure.

Each icon sits on a black square, so it reads on a light picture as on a dark one.
"""

SCALE = 2
PAD = 3  # black pixels around the shape
X, Y = 6, 6  # top left corner on the screen (the offline cross is top right)

_HEART = (
    "..XX...XX..",
    ".XXXX.XXXX.",
    "XXXXXXXXXXX",
    "XXXXXXXXXXX",
    ".XXXXXXXXX.",
    "..XXXXXXX..",
    "...XXXXX...",
    "....XXX....",
    ".....X.....",
)
_OUTLINE = (
    "..XX...XX..",
    ".X..X.X..X.",
    "X....X....X",
    "X.........X",
    ".X.......X.",
    "..X.....X..",
    "...X...X...",
    "....X.X....",
    ".....X.....",
)
_HIDDEN = (  # an eye, struck through
    "X..........",
    ".X.XXXXX...",
    "..XX...XX..",
    ".X..XXX..X.",
    "X..X.X.X..X",
    ".X..XXXX.X.",
    "..XX...XX..",
    "...XXXXX.X.",
    "..........X",
)
_ERROR = (
    ".....X.....",
    "....XXX....",
    "....X.X....",
    "...X.X.X...",
    "...X.X.X...",
    "..X..X..X..",
    "..X.....X..",
    ".X...X...X.",
    "XXXXXXXXXXX",
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
    return len(rows[0]) * SCALE + 2 * PAD, len(rows) * SCALE + 2 * PAD


def color(word: str) -> int:
    return SHAPES[word][0]


def dots(word: str) -> list[tuple[int, int]]:
    """The (x, y) pixels of the shape, within `size(word)`."""
    found = []
    for row, line in enumerate(SHAPES[word][1]):
        for col, mark in enumerate(line):
            if mark == "X":
                for dy in range(SCALE):
                    for dx in range(SCALE):
                        found.append((PAD + col * SCALE + dx, PAD + row * SCALE + dy))
    return found

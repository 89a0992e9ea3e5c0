"""Picture file names on the card, `<picture id>.<version>.bmp`: recognising, ordering and
reading them. Pure: names in, values out.
"""

HEX = "0123456789abcdef"
DASHES = (8, 13, 18, 23)  # where a UUID has its dashes


def is_picture(name: str) -> bool:
    """True for `<uuid>.<version>.bmp` and `<uuid>+<uuid>.<version>.bmp` with lower-case hex
    ids and an 8-hex-digit version. Anything else on the card (a copy a computer left, a file
    of the right length by chance) is not a picture: callers parse ids as hex."""
    size = len(name)
    if (size != 49 and size != 86) or name[-13] != "." or not name.endswith(".bmp"):
        return False
    if not _hex(name, size - 12, size - 4) or not _uuid(name, 0):
        return False
    return size == 49 or (name[36] == "+" and _uuid(name, 37))


def _hex(name: str, start: int, end: int) -> bool:
    return all(name[i] in HEX for i in range(start, end))  # by index: no slice per name


def _uuid(name: str, start: int) -> bool:
    for i in range(36):
        c = name[start + i]
        if (c != "-") if i in DASHES else (c not in HEX):
            return False
    return True


def id_order(names: list[str]) -> None:
    """Sort file names by picture id, in place and without a key list (a key per name would
    double the listing's memory). Plain sorting is id order except that a pair's file
    "a+b.<v>.bmp" sorts before "a.<v>.bmp" while its id sorts after "a": move such singles up.
    """
    names.sort()
    for j in range(len(names)):
        name = names[j]
        if len(name) != 49:
            continue
        k = j
        while k > 0 and len(names[k - 1]) == 86 and names[k - 1][:36] == name[:36]:
            k -= 1
        if k < j:
            names.insert(k, names.pop(j))


def split(name: str) -> tuple[str, str]:
    return name[:-13], name[-12:-4]


def position(names: list[str], picture_id: str) -> int | None:
    """Where `picture_id` (any version) is in a leaf listing, None when it is not there."""
    prefix = picture_id + "."
    for i, name in enumerate(names):
        if name.startswith(prefix) and len(name) == len(prefix) + 12:
            return i
    return None

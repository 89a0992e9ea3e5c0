"""Picture file names on the card, `<picture id>.<version>.bmp`: recognising, ordering and
reading them. Pure: names in, values out.
"""


def is_picture(name: str) -> bool:
    return (len(name) == 49 or len(name) == 86) and name[-13] == "." and name.endswith(".bmp")


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

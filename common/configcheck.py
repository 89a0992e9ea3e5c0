"""Checking raw YAML values for the config: `${VAR}` substitution and typed checks that collect
every problem with its key path instead of stopping at the first. Pure, except `existing_path`,
which looks at the filesystem to see that a path exists.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from common.configmodel import SECRET_KEYS, split_listen

Checker = Callable[[Any], Any]

_PLACEHOLDER = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{")
_MAX_SHOWN = 80
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class Invalid(Exception):
    """A checker's verdict on one value; the message says what was expected."""


class FromEnv(str):
    """A string produced by `${VAR}` substitution. Numbers and booleans may be read from it,
    because an environment variable cannot carry a YAML type."""


def join(path: str, key: object) -> str:
    """The path of a mapping's key."""
    return f"{path}.{key}" if path else str(key)


def index(path: str, i: int) -> str:
    """The path of a list's item."""
    return f"{path}[{i}]"


def is_secret(path: str) -> bool:
    return path.rsplit(".", 1)[-1].split("[", 1)[0] in SECRET_KEYS


def _may_hold_secret(path: str, value: object) -> bool:
    """A secret key's value, or a value that mentions a secret key: `api_key:abc` without the
    space after the colon, or `[{password: abc}]`, is still a secret when the shape is wrong."""
    if value is None:
        return False
    if is_secret(path):
        return True
    return isinstance(value, str | list | dict) and any(k in repr(value) for k in SECRET_KEYS)


def shown(value: object) -> str:
    text = repr(str(value)) if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


class Problems:
    """Collects `path: message, got <value>` lines; secret values are shown as '***'.

    One error per path: a value already reported (say, a missing variable) is not reported
    again for what follows from it (an empty string where a host was expected).
    """

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.paths: set[str] = set()
        self.count = 0  # problems found, reported or not: compare before and after a check

    def add(self, path: str, message: str, value: object) -> None:
        self.count += 1
        if path in self.paths:
            return
        self.paths.add(path)
        got = "'***'" if _may_hold_secret(path, value) else shown(value)
        self.errors.append(f"{path}: {message}, got {got}")

    def check(self, path: str, value: object, checker: Checker, fallback: Any = None) -> Any:
        """`checker(value)`, or `fallback` after recording why the value is invalid."""
        try:
            return checker(value)
        except Invalid as e:
            self.add(path, str(e), value)
            return fallback

    def mapping(self, path: str, value: object) -> dict[Any, Any] | None:
        """A section's mapping; an empty (null) section is an empty mapping."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, "expected a mapping of keys", value)
            return None
        return value

    def unknown_keys(self, path: str, data: Mapping[Any, Any], known: Iterable[str]) -> None:
        options = list(known)
        for key in data:
            if str(key) not in options:
                close = difflib.get_close_matches(str(key), options, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known_list = "|".join(options)
                self.add(join(path, key), f"unknown key{hint}, expected one of {known_list}", key)

    def fields(
        self,
        path: str,
        data: Mapping[Any, Any],
        checks: Mapping[str, Checker],
        required: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Check the keys of one mapping; returns keyword arguments for the valid ones."""
        self.unknown_keys(path, data, checks)
        out: dict[str, Any] = {}
        for name, checker in checks.items():
            if name in data:
                before = self.count
                value = self.check(join(path, name), data[name], checker)
                if self.count == before:
                    out[name] = value
            elif name in required:
                self.add(join(path, name), "required key is missing", None)
        return out


def substitute(problems: Problems, path: str, data: object, env: Mapping[str, str]) -> object:
    """Replace `${VAR}` and `${VAR:-default}` in every string value; `$$` is a literal `$`."""
    if isinstance(data, dict):
        return {k: substitute(problems, join(path, k), v, env) for k, v in data.items()}
    if isinstance(data, list):
        return [substitute(problems, index(path, i), v, env) for i, v in enumerate(data)]
    if isinstance(data, str) and "$" in data:
        return _substitute_text(problems, path, data, env)
    return data


def _substitute_text(problems: Problems, path: str, text: str, env: Mapping[str, str]) -> str:
    used_env = False

    def replace(match: re.Match[str]) -> str:
        nonlocal used_env
        name, default = match.group(1), match.group(2)
        if match.group(0) == "$$":
            return "$"
        if name is None:
            problems.add(path, "malformed placeholder, expected ${NAME} or ${NAME:-default}", text)
            return ""
        used_env = True
        value = env.get(name, "")
        if value == "" and default is not None:
            return default
        if name not in env:
            hint = f"set it, or write ${{{name}:-default}}"
            problems.add(path, f"environment variable {name} is not set ({hint})", text)
        return value

    result = _PLACEHOLDER.sub(replace, text)
    return FromEnv(result) if used_env else result


# --- checkers: value in, converted value out, or Invalid -------------------------------------


def text(optional: bool = False) -> Checker:
    def check(value: Any) -> str | None:
        if optional and value in (None, ""):
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise Invalid("expected a string")
        if str(value).strip() == "":
            raise Invalid("must not be empty")
        return str(value)

    return check


def integer(lo: int, hi: int | None = None) -> Checker:
    expected = f"an integer from {lo} to {hi}" if hi is not None else f"an integer of at least {lo}"

    def check(value: Any) -> int:
        if isinstance(value, FromEnv) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(f"expected {expected}")
        if value < lo or (hi is not None and value > hi):
            raise Invalid(f"expected {expected}")
        return value

    return check


def number(lo: float, hi: float | None = None, above: bool = False) -> Checker:
    if hi is None:
        expected = f"a number {'greater than' if above else 'of at least'} {lo}"
    elif above:
        expected = f"a number greater than {lo} and at most {hi}"
    else:
        expected = f"a number from {lo} to {hi}"

    def check(value: Any) -> float:
        if isinstance(value, FromEnv):
            try:
                value = float(value)
            except ValueError:
                raise Invalid(f"expected {expected}") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Invalid(f"expected {expected}")
        too_low = value <= lo if above else value < lo
        if too_low or (hi is not None and value > hi) or value != value:
            raise Invalid(f"expected {expected}")
        return value

    return check


def boolean(value: Any) -> bool:
    if isinstance(value, FromEnv) and value.strip().lower() in (*_TRUE, *_FALSE):
        return value.strip().lower() in _TRUE
    if not isinstance(value, bool):
        raise Invalid("expected true or false")
    return value


def choice(options: Iterable[str]) -> Checker:
    allowed = tuple(options)

    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise Invalid(f"expected one of {'|'.join(allowed)}")
        return str(value)

    return check


def http_url(value: Any) -> str:
    if not isinstance(value, str):
        raise Invalid("expected an http:// or https:// URL")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("expected an http:// or https:// URL")
    return value.strip().rstrip("/")


def listen(optional: bool = False) -> Checker:
    def check(value: Any) -> str | None:
        if optional and value in (None, ""):
            return None
        if not isinstance(value, str):
            raise Invalid("expected host:port, with a port from 1 to 65535")
        try:
            split_listen(value)
        except ValueError:
            raise Invalid("expected host:port, with a port from 1 to 65535") from None
        return str(value)

    return check


def topic(value: Any) -> str:
    # `%` would be read as a substitution in the broker ACL written from these topics.
    if not isinstance(value, str) or not re.fullmatch(
        r"[^/+#%$\x00-\x20\x7f][^+#%\x00-\x20\x7f]*", value
    ):
        raise Invalid(
            "expected an MQTT topic without wildcards, '%', spaces or a leading '/' or '$'"
        )
    if value.endswith("/") or "//" in value:
        raise Invalid("expected an MQTT topic without empty levels")
    return str(value)


def timezone(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise Invalid("expected an IANA time zone name such as Europe/Berlin")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("unknown time zone, expected a name such as Europe/Berlin or UTC") from None
    return str(value)


def existing_path(base_dir: Path, kind: str | None, optional: bool = False) -> Checker:
    """A path relative to the config file's directory (`~` expanded), made absolute.

    `kind` is "dir" or "file" to require that it exists as such, None to accept a missing path.
    """

    def check(value: Any) -> Path | None:
        if optional and value in (None, ""):
            return None
        if not isinstance(value, str) or not value.strip():
            raise Invalid("expected a path")
        path = (base_dir / Path(value).expanduser()).resolve()
        if kind == "dir" and not path.is_dir():
            raise Invalid(f"no such directory {str(path)!r}")
        if kind == "file" and not path.is_file():
            raise Invalid(f"no such file {str(path)!r}")
        return path

    return check

"""Mosquitto users and ACLs for titanoframe: password-file lines and ACL text. Pure, no I/O.

Each role gets only what the contract needs; frames are matched by `%u` patterns, so a frame's
MQTT username is its frame id and adding a frame needs no ACL edit beyond its password line.

Mosquitto applies `pattern` lines to every user, the service roles included. For a service user
whose name is also a path segment under the base topic (`<base>/renderer/...`), the patterns
would grant it a frame's rights there. Those topics mean nothing — the names are reserved, so no
frame can have them — but the `renderer` and `homeassistant` sections start with an explicit
`deny` for their own subtree, so that their rights are exactly the ones listed (a matching user
line decides before any pattern is looked at). The bridge owns all of `<base>/#` anyway.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

# Mosquitto 2.x password file format: `$7$<iterations>$<salt b64>$<PBKDF2-SHA512 b64>`.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12

# Usernames of the service roles. A frame may not take one of these names.
RESERVED_USERS = ("bridge", "renderer", "homeassistant")

# A topic prefix we write into the ACL: MQTT topic levels without wildcards, `%` (pattern
# substitution), whitespace or control characters — any of those would widen or break a rule —
# and not starting with `$`, which `#` rules never match.
_TOPIC_PREFIX = re.compile(r"(?!\$)[^\s/#+%\x00-\x1f\x7f]+(/[^\s/#+%\x00-\x1f\x7f]+)*")
_BAD_USERNAME = re.compile(r"[:\s\x00-\x1f\x7f#+/%]")


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Return the password-file hash of `password`, as `mosquitto_passwd` writes it."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    salt_b64 = base64.b64encode(salt).decode()
    return f"$7${PBKDF2_ITERATIONS}${salt_b64}${base64.b64encode(digest).decode()}"


def check_username(name: str) -> None:
    """Raise ValueError unless `name` can be a Mosquitto username that ACL patterns treat safely.

    `:` would split the password-file line; `+`, `#` and `/` inside a `%u` substitution would
    make a frame's pattern match other frames' topics (Mosquitto denies such users outright).
    """
    if not name or _BAD_USERNAME.search(name):
        raise ValueError(
            f"username {name!r}: must be non-empty, without ':', '/', '+', '#', '%' or spaces"
        )


def password_file(users: dict[str, str], salt: bytes | None = None) -> str:
    """Password-file text for `{username: password}`, sorted by username."""
    for name, password in users.items():
        check_username(name)
        if not password:
            raise ValueError(f"username {name!r}: empty password")
    return "".join(f"{name}:{hash_password(pw, salt)}\n" for name, pw in sorted(users.items()))


def check_topic_prefix(name: str, value: str) -> None:
    """Raise ValueError naming `name` unless `value` is a plain topic prefix (no wildcards)."""
    if not _TOPIC_PREFIX.fullmatch(value):
        raise ValueError(
            f"{name}: must be topic levels without wildcards, '%', spaces or a leading '$', "
            f"got {value!r}"
        )


def acl_text(base: str, discovery_prefix: str = "homeassistant") -> str:
    """The ACL for every role; frames are covered by `%u` patterns."""
    check_topic_prefix("mqtt.base_topic", base)
    check_topic_prefix("mqtt.discovery_prefix", discovery_prefix)
    if base == discovery_prefix:
        raise ValueError(
            f"mqtt.base_topic: must differ from mqtt.discovery_prefix, got {base!r} for both"
        )
    return "\n".join(
        [
            "# titanoframe ACL, written by `python -m bridge broker-users`. Edits are overwritten.",
            "# A user's own lines are checked first, in order; the frame patterns at the end only",
            "# when none of them matched.",
            "",
            *_bridge_lines(base, discovery_prefix),
            "",
            *_renderer_lines(base),
            "",
            *_homeassistant_lines(base, discovery_prefix),
            "",
            *_frame_patterns(base),
            "",
        ]
    )


def _bridge_lines(base: str, discovery_prefix: str) -> list[str]:
    return [
        "# bridge: the whole base topic (manifests, picture, schedules, clearing retained cmd/)",
        "# and Home Assistant discovery, including HA's birth message.",
        "user bridge",
        f"topic readwrite {base}/#",
        f"topic readwrite {discovery_prefix}/#",
    ]


def _renderer_lines(base: str) -> list[str]:
    return [
        "# renderer: reads the manifests (summary and pages) to know what each frame may fetch,",
        "# and announces images cast to a frame.",
        "user renderer",
        f"topic deny {base}/renderer/#",
        f"topic read {base}/+/manifest",
        f"topic read {base}/+/manifest/+",
        f"topic write {base}/+/cast",
    ]


def _homeassistant_lines(base: str, discovery_prefix: str) -> list[str]:
    return [
        "# homeassistant: reads everything the frames and the bridge say, sends commands, reads",
        "# discovery and sends its birth / last will (HA's birth topic must be <prefix>/status).",
        "# Discovery itself belongs to the bridge: HA cannot write or clear it.",
        "user homeassistant",
        f"topic deny {base}/homeassistant/#",
        f"topic read {base}/#",
        f"topic write {base}/+/cmd/#",
        f"topic write {base}/bridge/cmd/confirm_removal",
        f"topic readwrite {discovery_prefix}/status",
        f"topic read {discovery_prefix}/#",
    ]


def _frame_patterns(base: str) -> list[str]:
    return [
        "# frames: username = frame id. Each reads its own manifest, commands and casts and writes",
        "# its own state, status (also its last will) and events — nothing else.",
        f"pattern read {base}/%u/manifest",
        f"pattern read {base}/%u/manifest/+",
        f"pattern read {base}/%u/cmd/#",
        f"pattern read {base}/%u/cast",
        f"pattern write {base}/%u/state",
        f"pattern write {base}/%u/status",
        f"pattern write {base}/%u/event",
    ]

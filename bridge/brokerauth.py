"""Mosquitto users and ACLs for titanoframe: password-file lines and ACL text. Pure, no I/O.

Each role gets only what the contract needs; frames are matched by `%u` patterns, so a frame's
MQTT username is its frame id and adding a frame needs no ACL edit beyond its password line.
"""

from __future__ import annotations

import base64
import hashlib
import os

# Mosquitto 2.x password file format: `$7$<iterations>$<salt b64>$<PBKDF2-SHA512 b64>`.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12

# Usernames of the service roles. A frame may not take one of these names.
RESERVED_USERS = ("bridge", "renderer", "homeassistant")


def hash_password(password: str, salt: bytes | None = None) -> str:
    """Return the password-file hash of `password`, as `mosquitto_passwd` writes it."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    salt_b64 = base64.b64encode(salt).decode()
    return f"$7${PBKDF2_ITERATIONS}${salt_b64}${base64.b64encode(digest).decode()}"


def password_file(users: dict[str, str], salt: bytes | None = None) -> str:
    """Password-file text for `{username: password}`, sorted by username."""
    return "".join(f"{name}:{hash_password(pw, salt)}\n" for name, pw in sorted(users.items()))


def acl_text(base: str, discovery_prefix: str = "homeassistant") -> str:
    """The ACL for every role; frames are covered by `%u` patterns."""
    return f"""# titanoframe ACL, written by `python -m bridge broker-users`. Edits are overwritten.

# bridge: the whole base topic (manifests, picture, schedules, clearing retained cmd/)
# and Home Assistant discovery.
user bridge
topic readwrite {base}/#
topic readwrite {discovery_prefix}/#

# renderer: reads the manifests to know what each frame may fetch.
user renderer
topic read {base}/+/manifest
topic read {base}/+/manifest/+

# homeassistant: reads everything the frames and the bridge say, sends commands,
# and owns its own discovery subscription and birth message.
user homeassistant
topic read {base}/#
topic write {base}/+/cmd/#
topic read {discovery_prefix}/#
topic readwrite {discovery_prefix}/status

# frames: username = frame id. Each reads its own manifest and commands and writes its own
# state, status (also its last will) and events — nothing else.
pattern read {base}/%u/manifest
pattern read {base}/%u/manifest/+
pattern read {base}/%u/cmd/#
pattern write {base}/%u/state
pattern write {base}/%u/status
pattern write {base}/%u/event
"""

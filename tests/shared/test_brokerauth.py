"""Password files and ACL text from `common.brokerauth`: identical to what Mosquitto's own tools
write, accepted by a real broker, and refusing input that would widen a rule."""

from __future__ import annotations

import shutil
import subprocess
from base64 import b64decode
from pathlib import Path

import pytest

from common import brokerauth
from tests.kit.broker import USERS, Mosquitto, aliases_acl
from tests.kit.mqttc import Collector

needs_passwd_tool = pytest.mark.skipif(
    shutil.which("mosquitto_passwd") is None, reason="needs mosquitto_passwd (apt mosquitto)"
)


def mosquitto_passwd_line(tmp_path: Path, user: str, password: str) -> str:
    path = tmp_path / "passwd"
    path.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(path), user, password], check=True, timeout=10)
    return path.read_text().strip()


@needs_passwd_tool
@pytest.mark.parametrize("password", ["s3cret", "pässwörd mit Leerzeichen", "x" * 200])
def test_hash_is_what_mosquitto_passwd_writes(tmp_path: Path, password: str) -> None:
    line = mosquitto_passwd_line(tmp_path, "kitchen", password)
    user, hashed = line.split(":", 1)
    salt = b64decode(hashed.split("$")[3])
    assert f"{user}:{brokerauth.hash_password(password, salt)}" == line


def test_hash_shape_and_fresh_salt() -> None:
    a, b = brokerauth.hash_password("pw"), brokerauth.hash_password("pw")
    assert a != b
    for hashed in (a, b):
        _, kind, rounds, salt, digest = hashed.split("$")
        assert (kind, rounds) == ("7", "101")
        assert len(b64decode(salt)) == brokerauth.SALT_BYTES
        assert len(b64decode(digest)) == 64


def test_password_file_sorted_one_line_per_user() -> None:
    text = brokerauth.password_file({"kitchen": "a", "bridge": "b", "hall": "c"})
    assert [line.split(":")[0] for line in text.splitlines()] == ["bridge", "hall", "kitchen"]
    assert text.endswith("\n")


@pytest.mark.parametrize("name", ["", "a:b", "with space", "a/b", "a+b", "a#", "%u", "x\ny"])
def test_password_file_refuses_unsafe_usernames(name: str) -> None:
    with pytest.raises(ValueError, match="username"):
        brokerauth.password_file({name: "pw"})


def test_password_file_refuses_empty_password() -> None:
    with pytest.raises(ValueError, match="'kitchen': empty password"):
        brokerauth.password_file({"kitchen": ""})


@pytest.mark.parametrize(
    "base",
    ["", "a/#", "a/+/b", "/lead", "trail/", "two//levels", "sp ace", "new\nline", "%u", "$SYS"],
)
def test_acl_refuses_unsafe_base_topic(base: str) -> None:
    with pytest.raises(ValueError, match=r"mqtt\.base_topic"):
        brokerauth.acl_text(base)


def test_acl_refuses_unsafe_discovery_prefix() -> None:
    with pytest.raises(ValueError, match=r"mqtt\.discovery_prefix"):
        brokerauth.acl_text("titanoframe", "home/#")


def test_acl_refuses_base_equal_to_discovery_prefix() -> None:
    with pytest.raises(ValueError, match="must differ"):
        brokerauth.acl_text("homeassistant", "homeassistant")


def test_acl_lines_are_all_rules_or_comments() -> None:
    for line in brokerauth.acl_text("home/frames", "ha").splitlines():
        assert line == "" or line.startswith(("#", "user ", "topic ", "pattern "))
        if line.startswith(("topic ", "pattern ")):
            access, topic = line.split()[1:]
            assert access in ("read", "write", "readwrite", "deny")
            assert topic.startswith(("home/frames/", "ha/"))


def test_every_service_user_has_a_section() -> None:
    text = brokerauth.acl_text("titanoframe")
    assert [f"user {u}" for u in brokerauth.RESERVED_USERS] == [
        line for line in text.splitlines() if line.startswith("user ")
    ]


def test_broker_accepts_generated_files_with_custom_topics(tmp_path: Path) -> None:
    """A nested base topic and a non-default discovery prefix: every right follows them."""
    if shutil.which("mosquitto") is None:
        pytest.skip("needs the mosquitto binary")
    broker = Mosquitto(tmp_path / "broker")
    acl = brokerauth.acl_text("home/frames", "ha")
    (broker.workdir / "acl").write_text(acl + aliases_acl(acl, USERS))
    broker.start()
    try:
        bridge = Collector(broker, "bridge")
        assert bridge.wait_connected()
        bridge.subscribe("#")
        publish(broker, "kitchen", "home/frames/kitchen/state", "k")
        publish(broker, "kitchen", "titanoframe/kitchen/state", "old base")
        publish(broker, "homeassistant", "homeassistant/status", "online")
        publish(broker, "homeassistant", "ha/status", "online")
        publish(broker, "homeassistant", "ha/device/x/config", "not hers")
        publish(broker, "bridge", "home/frames/barrier", "end")
        assert bridge.wait_for(lambda m: any(t == "home/frames/barrier" for t, _, _ in m))
        close(bridge)
        topics = [t for t, _, _ in bridge.messages]
        assert topics == ["home/frames/kitchen/state", "ha/status", "home/frames/barrier"]
    finally:
        broker.stop()


def close(collector: Collector) -> None:
    collector.client.disconnect()  # first: loop_stop() alone waits out the loop's select()
    collector.client.loop_stop()


def publish(broker: Mosquitto, user: str, topic: str, payload: str) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2)
    c.username_pw_set(user, broker.users[user])
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.publish(topic, payload, qos=1).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def test_wrong_password_is_refused(broker: Mosquitto) -> None:
    right, wrong = Collector(broker, "kitchen"), Collector(broker, "kitchen", password="hall-pw")
    try:
        assert right.wait_connected()
        assert not wrong.wait_connected()
    finally:
        close(right)
        close(wrong)

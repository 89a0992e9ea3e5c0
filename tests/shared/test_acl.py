"""Who may read and write which topic: the broker ACL (`common.brokerauth.acl_text`) checked on
a real Mosquitto started from broker_config/, once with paho and once with the `mosquitto_pub` /
`mosquitto_sub` command-line clients that users script with.

Reading: the bridge publishes a retained message on every topic of the table; each role then
subscribes to `#` and keeps what arrives before a barrier message sent to it afterwards.
Writing: each role publishes (QoS 1) on every topic and a bridge subscriber on `#` records what
gets through. Mosquitto acks a denied QoS 1 publish like an allowed one, so only delivery counts.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.kit.broker import BASE, Mosquitto

# r = may read, w = may write, - = neither. docs/deploy.md shows the same table.
TABLE = """
topic                                           bridge renderer homeassistant kitchen hall anonymous
titanoframe/bridge/status                       rw     -        r             -       -    -
titanoframe/bridge/state                        rw     -        r             -       -    -
titanoframe/bridge/cmd/confirm_removal          rw     -        rw            -       -    -
titanoframe/kitchen/manifest                    rw     r        r             r       -    -
titanoframe/kitchen/manifest/a                  rw     r        r             r       -    -
titanoframe/kitchen/picture                     rw     -        r             -       -    -
titanoframe/kitchen/guests                      rw     -        r             -       -    -
titanoframe/kitchen/status                      rw     -        r             w       -    -
titanoframe/kitchen/state                       rw     -        r             w       -    -
titanoframe/kitchen/event                       rw     -        r             w       -    -
titanoframe/kitchen/cmd/next                    rw     -        rw            r       -    -
titanoframe/kitchen/cmd/like                    rw     -        rw            r       -    -
titanoframe/kitchen/cmd/hide                    rw     -        rw            r       -    -
titanoframe/kitchen/cmd/show                    rw     -        rw            r       -    -
titanoframe/kitchen/cmd/notice                  rw     -        rw            r       -    -
titanoframe/kitchen/cast                        rw     w        r             r       -    -
titanoframe/kitchen/other                       rw     -        r             -       -    -
titanoframe/hall/manifest                       rw     r        r             -       r    -
titanoframe/hall/manifest/all                   rw     r        r             -       r    -
titanoframe/hall/picture                        rw     -        r             -       -    -
titanoframe/hall/status                         rw     -        r             -       w    -
titanoframe/hall/state                          rw     -        r             -       w    -
titanoframe/hall/event                          rw     -        r             -       w    -
titanoframe/hall/cmd/brightness                 rw     -        rw            -       r    -
titanoframe/hall/cast                           rw     w        r             -       r    -
homeassistant/device/titanoframe_kitchen/config rw     -        r             -       -    -
homeassistant/device/titanoframe-bridge/config  rw     -        r             -       -    -
homeassistant/status                            rw     -        rw            -       -    -
titanoframe/renderer/manifest                   rw     -        r             -       -    -
titanoframe/renderer/state                      rw     -        r             -       -    -
titanoframe/renderer/cast                       rw     -        r             -       -    -
titanoframe/homeassistant/state                 rw     -        -             -       -    -
titanoframe/homeassistant/cmd/next              rw     -        -             -       -    -
"""


def _parse(table: str) -> tuple[tuple[str, ...], dict[str, dict[str, str]]]:
    header, *rows = (line.split() for line in table.strip().splitlines())
    roles = tuple(header[1:])
    return roles, {topic: dict(zip(roles, cells, strict=True)) for topic, *cells in rows}


ROLES, RIGHTS = _parse(TABLE)
TOPICS = tuple(RIGHTS)
# A topic each role can read, outside the table: a message there marks "all retained sent".
BARRIER = {
    "bridge": f"{BASE}/barrier/bridge",
    "renderer": f"{BASE}/barrier/manifest/renderer",
    "homeassistant": f"{BASE}/barrier/homeassistant",
    "kitchen": f"{BASE}/kitchen/cmd/barrier",
    "hall": f"{BASE}/hall/cmd/barrier",
}
# Aliases of the bridge (same rights) for the test's own barrier messages and observer: the
# broker binds client ids to user names, so they must not log in as `bridge` itself.
SENDER = "bridge.24"
WAIT = 10.0  # upper bound for anything to arrive; the tests never wait for an absence
_ids = itertools.count()


def expected(role: str, mode: str) -> set[str]:
    return {topic for topic, cells in RIGHTS.items() if mode in cells[role]}


@dataclass
class Seen:
    """What one client tool could do, per role."""

    connected: dict[str, bool] = field(default_factory=dict)
    reads: dict[str, set[str]] = field(default_factory=dict)
    writes: dict[str, set[str]] = field(default_factory=dict)


class Peer:
    """A paho client logged in as one role (or anonymous), recording what it receives."""

    def __init__(self, broker: Mosquitto, role: str, client_id: str | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.lock = threading.Lock()
        self.connack = threading.Event()
        self.subacked = threading.Event()
        self.ok = False
        cid = client_id or f"acl-{role}-{next(_ids)}"
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid)
        if role != "anonymous":
            self.client.username_pw_set(role, broker.users[role])
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *args: self.subacked.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: object,
                    props: object) -> None:  # fmt: skip
        self.ok = not getattr(rc, "is_failure", True)
        self.connack.set()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def connected(self) -> bool:
        return self.connack.wait(WAIT) and self.ok

    def subscribe(self, topic: str) -> None:
        self.subacked.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subacked.wait(WAIT), f"no SUBACK for {topic}"

    def publish(self, topic: str, payload: str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(WAIT)

    def wait_topic(self, topic: str) -> list[tuple[str, bytes, bool]]:
        """Every message received before the first one on `topic` (which must come)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            with self.lock:
                topics = [m[0] for m in self.messages]
                if topic in topics:
                    return self.messages[: topics.index(topic)]
            time.sleep(0.01)
        raise AssertionError(f"nothing arrived on {topic}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_retained(broker: Mosquitto) -> None:
    bridge = Peer(broker, "bridge")
    assert bridge.connected()
    for topic in TOPICS:
        bridge.publish(topic, f"r:{topic}", retain=True)
    bridge.close()


def observe_paho(broker: Mosquitto) -> Seen:
    seen = Seen()
    # An alias of the bridge (same rights): the broker binds client ids to user names, so the
    # control client and the `bridge` peer under test would take each other's connection over.
    control = Peer(broker, broker.alias("bridge"))
    assert control.connected()
    control.subscribe("#")
    for role in ROLES:
        peer = Peer(broker, role)
        seen.connected[role] = peer.connected()
        seen.reads[role], seen.writes[role] = set(), set()
        if seen.connected[role]:
            peer.subscribe("#")
            control.publish(BARRIER[role], "barrier")
            got = peer.wait_topic(BARRIER[role])
            seen.reads[role] = {t for t, p, _ in got if t in RIGHTS and p == f"r:{t}".encode()}
            for topic in TOPICS:
                peer.publish(topic, f"w:paho:{role}")
        peer.close()
    control.publish(f"{BASE}/barrier/end", "barrier")
    for topic, payload, _ in control.wait_topic(f"{BASE}/barrier/end"):
        if payload.startswith(b"w:paho:"):
            seen.writes[payload.decode().removeprefix("w:paho:")].add(topic)
    control.close()
    return seen


# --- the same with mosquitto_pub / mosquitto_sub --------------------------------------------


def cli(broker: Mosquitto, tool: str, role: str, *args: str) -> list[str]:
    login = [] if role == "anonymous" else ["-u", role, "-P", broker.users[role]]
    return [tool, "-h", broker.host, "-p", str(broker.port), "-q", "1", *login, *args]


def cli_pub(broker: Mosquitto, role: str, topic: str, payload: str, *extra: str) -> int:
    cmd = cli(broker, "mosquitto_pub", role, "-t", topic, "-m", payload, *extra)
    return subprocess.run(cmd, capture_output=True, timeout=WAIT).returncode


def cli_reads(broker: Mosquitto, role: str) -> tuple[bool, set[str]]:
    """Retained messages `role` receives on `#`; the barrier (not retained) ends mosquitto_sub."""
    cmd = cli(broker, "mosquitto_sub", role, "-t", "#", "-v", "--retained-only", "-W", "10")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + WAIT
    while proc.poll() is None and time.monotonic() < deadline:
        # Sent until it arrives: mosquitto_sub cannot say when its subscription is in place.
        cli_pub(broker, SENDER, BARRIER.get(role, f"{BASE}/barrier/x"), "barrier")
    out, _ = proc.communicate(timeout=WAIT)
    lines = (line.split(" ", 1) for line in out.splitlines())
    return proc.returncode == 0, {t for t, *p in lines if p == [f"r:{t}"]}


class CliObserver:
    """`mosquitto_sub -R -v` as the bridge on `#`: the live (non-retained) messages, in order."""

    def __init__(self, broker: Mosquitto) -> None:
        self.broker = broker
        cmd = cli(broker, "mosquitto_sub", "bridge.23", "-t", "#", "-v", "-R", "-W", "60")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def until(self, topic: str, resend: bool) -> list[tuple[str, str]]:
        """Messages before the first on `topic`, which the bridge publishes (again if `resend`)."""
        deadline = time.monotonic() + WAIT
        sent = False
        while time.monotonic() < deadline:
            pairs = [tuple(line.split(" ", 1)) for line in list(self.lines)]
            if any(p[0] == topic for p in pairs):
                return [(p[0], p[1]) for p in itertools.takewhile(lambda p: p[0] != topic, pairs)]
            if resend or not sent:
                cli_pub(self.broker, SENDER, topic, "barrier")
                sent = True
            time.sleep(0.02)
        raise AssertionError(f"mosquitto_sub saw nothing on {topic}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(WAIT)


def observe_cli(broker: Mosquitto) -> Seen:
    seen = Seen()
    for role in ROLES:
        seen.connected[role], seen.reads[role] = cli_reads(broker, role)
        seen.writes[role] = set()
    observer = CliObserver(broker)
    observer.until(f"{BASE}/barrier/ready", resend=True)

    def writes(role: str) -> None:  # one client of a role at a time: one connection per user
        for topic in TOPICS:
            cli_pub(broker, role, topic, f"w:cli:{role}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(writes, ROLES))
    for topic, payload in observer.until(f"{BASE}/barrier/end", resend=False):
        if payload.startswith("w:cli:"):
            seen.writes[payload.removeprefix("w:cli:")].add(topic)
    observer.close()
    return seen


# --- fixtures and tests ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def acl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """One broker for the whole module: the matrix only reads and writes, it changes no rights."""
    needed = ("mosquitto", "mosquitto_pub", "mosquitto_sub")
    if missing := [b for b in needed if shutil.which(b) is None]:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install mosquitto mosquitto-clients)")
    broker = Mosquitto(Path(tmp_path_factory.mktemp("acl")) / "broker")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def seen(acl_broker: Mosquitto) -> dict[str, Seen]:
    publish_retained(acl_broker)
    return {"paho": observe_paho(acl_broker), "cli": observe_cli(acl_broker)}


def _diff(got: set[str], want: set[str]) -> str:
    return f"granted but not in the table: {sorted(got - want)}; denied: {sorted(want - got)}"


@pytest.mark.parametrize("tool", ["paho", "cli"])
@pytest.mark.parametrize("role", ROLES)
def test_reads_match_table(seen: dict[str, Seen], tool: str, role: str) -> None:
    got, want = seen[tool].reads[role], expected(role, "r")
    assert got == want, _diff(got, want)


@pytest.mark.parametrize("tool", ["paho", "cli"])
@pytest.mark.parametrize("role", ROLES)
def test_writes_match_table(seen: dict[str, Seen], tool: str, role: str) -> None:
    got, want = seen[tool].writes[role], expected(role, "w")
    assert got == want, _diff(got, want)


@pytest.mark.parametrize("tool", ["paho", "cli"])
def test_only_known_users_get_in(seen: dict[str, Seen], tool: str) -> None:
    assert seen[tool].connected == {role: role != "anonymous" for role in ROLES}


def test_a_frame_stays_in_its_own_topics(seen: dict[str, Seen]) -> None:
    for s in seen.values():
        assert f"{BASE}/hall/manifest" not in s.reads["kitchen"]
        assert f"{BASE}/hall/manifest/all" not in s.reads["kitchen"]
        assert f"{BASE}/hall/state" not in s.writes["kitchen"]
        assert not {t for t in s.writes["kitchen"] if "manifest" in t or "homeassistant" in t}


def test_service_users_gain_nothing_from_frame_patterns(seen: dict[str, Seen]) -> None:
    # The frame patterns apply to every user; `renderer` and `homeassistant` are path segments
    # under the base topic too, and their explicit deny keeps the patterns out.
    for s in seen.values():
        # the renderer writes only the casts its own rule allows
        assert s.writes["renderer"] == {f"{BASE}/kitchen/cast", f"{BASE}/hall/cast"}
        assert f"{BASE}/renderer/cast" not in s.writes["renderer"]
        assert f"{BASE}/homeassistant/state" not in s.writes["homeassistant"]


def test_last_will_only_on_own_status(acl_broker: Mosquitto) -> None:
    observer = Peer(acl_broker, "bridge")
    assert observer.connected()
    observer.subscribe("#")
    ping = f"{BASE}/kitchen/cmd/will"
    # Retained, so the will-bearing client sees it as soon as its subscription is in place.
    observer.publish(ping, "ping", retain=True)
    for will_topic in (f"{BASE}/hall/status", f"{BASE}/kitchen/status"):
        cid = f"acl-will-{next(_ids)}"
        will = ["--will-topic", will_topic, "--will-payload", "offline", "--will-qos", "1"]
        proc = subprocess.Popen(cli(acl_broker, "mosquitto_sub", "kitchen", "-t", ping, "-i", cid,
                                    *will), stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert proc.stdout is not None and proc.stdout.readline() == "ping\n"
        proc.kill()  # no DISCONNECT: the broker publishes the will, if the ACL lets it
        proc.wait()
        # Taking over the client id makes the broker finish with the old connection first.
        successor = Peer(acl_broker, "kitchen", client_id=cid)
        assert successor.connected()
        successor.close()
    observer.publish(ping, "", retain=True)
    observer.publish(f"{BASE}/barrier/will", "barrier")
    got = observer.wait_topic(f"{BASE}/barrier/will")
    observer.close()
    wills = {(t, p) for t, p, retained in got if t.endswith("/status") and not retained}
    assert wills == {(f"{BASE}/kitchen/status", b"offline")}


def test_retained_manifest_survives_restart(acl_broker: Mosquitto) -> None:
    topic = f"{BASE}/kitchen/manifest"
    assert cli_pub(acl_broker, "bridge", topic, '{"v": 1, "rev": "0badf00d"}', "-r") == 0
    assert cli_pub(acl_broker, "bridge", f"{topic}/7", "page-7", "-r") == 0
    acl_broker.restart()
    for wanted, line in ((topic, '{"v": 1, "rev": "0badf00d"}'), (f"{topic}/7", "page-7")):
        args = ["-t", wanted, "-v", "-C", "1", "-W", "5"]
        out = subprocess.run(cli(acl_broker, "mosquitto_sub", "kitchen", *args),
                             capture_output=True, text=True, timeout=WAIT)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.split(" ", 1)[1].rstrip("\n") == line

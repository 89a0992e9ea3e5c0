"""Home Assistant device discovery: the entities a user sees, valid for every supported release."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bridge import discovery
from common import topics
from common.config import Config, FrameConfig, ImmichConfig, MqttConfig, RendererConfig
from tests.kit import hacheck
from titano_app.frame.state import SYNC as STATE_SYNC

BASE, PREFIX = "titanoframe", "homeassistant"


# The bridge's entities for the frame: they read the bridge's state and command it (§5).
FROM_BRIDGE = {"held_removals": "sensor", "confirm_removal": "button", "shared_id": "binary_sensor"}
FIRMWARE = "0.4.1"  # what the frame reports in its state; "1.2.3" is the bridge's version


def doc(frame: str = "kitchen", base: str = BASE) -> dict[str, Any]:
    return discovery.device_config(
        frame, base, "1.2.3", "https://example.org/titanoframe", frame_version=FIRMWARE
    )


def cmps(frame: str = "kitchen") -> dict[str, dict[str, Any]]:
    components: dict[str, dict[str, Any]] = doc(frame)["cmps"]
    return components


def test_topic_and_payload_are_valid_for_every_release() -> None:
    topic, payload = discovery.message(PREFIX, "kitchen", BASE, "1.2.3")
    assert topic == "homeassistant/device/titanoframe_kitchen/config"
    assert hacheck.check(payload) == []
    assert hacheck.check(doc()) == []
    assert set(hacheck.versions()) >= {"2024.11.3", "2026.11.0"}


def test_every_entity_of_the_protocol_is_there() -> None:
    platforms = {key: c["p"] for key, c in cmps().items()}
    assert platforms == {
        "display": "light",
        "pause": "switch",
        "auto_brightness": "switch",
        "next": "button",
        "previous": "button",
        "sync": "button",
        "interval": "number",
        "picture": "image",
        "count": "sensor",
        "pending": "sensor",
        "sd_free": "sensor",
        "last_sync": "sensor",
        "light": "sensor",
        "rssi": "sensor",
        "uptime": "sensor",
        "sync_status": "sensor",
        "last_error": "sensor",
        "mem_free": "sensor",
        "boot": "sensor",
        "touch_next": "device_automation",
        "touch_previous": "device_automation",
        "touch_pause": "device_automation",
        "touch_hold": "device_automation",
        "like": "button",
        "hide": "button",
        **FROM_BRIDGE,
    }


def test_controls_send_the_protocol_commands() -> None:
    c = cmps()
    assert c["confirm_removal"]["cmd_t"] == topics.bridge_cmd(BASE, "confirm_removal")
    sent = {
        key: topics.parse_cmd(BASE, comp["cmd_t"])
        for key, comp in c.items()
        if "cmd_t" in comp and key not in FROM_BRIDGE
    }
    assert all(
        v is not None and v[0] == "kitchen" and v[1] in topics.COMMANDS for v in sent.values()
    )
    assert {k: v[1] for k, v in sent.items() if v} == {
        "display": "display",
        "pause": "pause",
        "auto_brightness": "auto_brightness",
        "next": "next",
        "previous": "previous",
        "sync": "sync",
        "interval": "interval",
        "like": "like",
        "hide": "hide",
    }
    light = c["display"]
    assert light["bri_cmd_t"] == topics.cmd(BASE, "kitchen", "brightness")
    assert light["bri_scl"] == 100 and (light["pl_on"], light["pl_off"]) == ("ON", "OFF")
    number = c["interval"]
    assert (number["min"], number["max"], number["mode"]) == (5, 86400, "box")


def test_state_comes_from_the_frame_state_topic() -> None:
    state = topics.state(BASE, "kitchen")
    for key, comp in cmps().items():
        if comp["p"] in ("sensor", "switch", "number", "light") and key != "last_error":
            assert comp["stat_t"] == (topics.bridge_state(BASE) if key in FROM_BRIDGE else state)
    assert cmps()["last_error"]["stat_t"] == topics.event(BASE, "kitchen")


def test_image_follows_the_picture_topic() -> None:
    image = cmps()["picture"]
    assert image["url_t"] == topics.picture(BASE, "kitchen")
    assert image["url_tpl"] == "{{ value_json.url }}" and "cont_type" not in image


def test_sensors_use_valid_classes_and_units() -> None:
    c = cmps()
    assert (c["sd_free"]["dev_cla"], c["sd_free"]["unit_of_meas"]) == ("data_size", "MB")
    assert (c["rssi"]["dev_cla"], c["rssi"]["unit_of_meas"], c["rssi"]["ent_cat"]) == (
        "signal_strength",
        "dBm",
        "diagnostic",
    )
    assert c["last_sync"]["dev_cla"] == "timestamp" and "unit_of_meas" not in c["last_sync"]


def test_touch_triggers_match_touch_events() -> None:
    for action in ("next", "previous", "pause", "hold"):
        trig = cmps()[f"touch_{action}"]
        assert trig["t"] == topics.event(BASE, "kitchen") and trig["atype"] == "trigger"
        assert trig["pl"] == action and trig["stype"] == action and "uniq_id" not in trig
    assert cmps()["touch_hold"]["type"] == "button_long_press"


def test_like_and_hide_buttons_send_commands_the_bridge_acts_on() -> None:
    c = cmps()
    for key, name in (("like", "Favourite this photo"), ("hide", "Hide this photo")):
        assert (c[key]["p"], c[key]["name"]) == ("button", name)
        assert c[key]["cmd_t"] == topics.cmd(BASE, "kitchen", key)
        assert "pl_prs" not in c[key]  # Home Assistant sends PRESS: the picture shown


def test_availability_frame_status_and_bridge_for_the_image() -> None:
    d = doc()
    assert d["avty"] == [{"t": topics.status(BASE, "kitchen")}]
    assert "avty_t" not in d
    image = d["cmps"]["picture"]
    assert {a["t"] for a in image["avty"]} == {
        topics.status(BASE, "kitchen"),
        topics.bridge_status(BASE),
    }
    assert image["avty_mode"] == "all"


def test_root_keys_and_qos_per_component() -> None:
    d = doc()
    assert set(d) == {"dev", "o", "avty", "cmps"}
    assert d["dev"] == {
        "ids": ["titanoframe_kitchen"],
        "name": "titanoframe kitchen",
        "mf": "Adafruit",
        "mdl": "PyPortal Titano",
        "sw": FIRMWARE,
    }
    assert d["o"] == {
        "name": "titanoframe",
        "sw": "1.2.3",
        "url": "https://example.org/titanoframe",
    }
    assert all("qos" in comp for comp in d["cmps"].values())


def test_unique_ids_are_stable_and_unique() -> None:
    first = {k: c.get("uniq_id") for k, c in cmps("kitchen").items()}
    assert first == {k: c.get("uniq_id") for k, c in cmps("kitchen").items()}
    ids = [u for u in first.values() if u]
    assert all(u == f"titanoframe_kitchen_{k}" for k, u in first.items() if u)
    hall = [c["uniq_id"] for c in cmps("hall").values() if "uniq_id" in c]
    assert len(set(ids)) == len(ids) == 24 and not set(ids) & set(hall)


def test_no_secret_reaches_the_payload() -> None:
    config = Config(
        immich=ImmichConfig(url="http://immich:2283", api_key="immich-key-SECRET1"),
        mqtt=MqttConfig(password="mqtt-pw-SECRET2", homeassistant_password="ha-SECRET3"),
        renderer=RendererConfig(url_key="url-key-SECRET4", mqtt_password="rend-SECRET5"),
        frames=(FrameConfig(id="kitchen", secret="frame-SECRET6"),),
    )
    for frame in config.frames:
        _, payload = discovery.message(
            config.mqtt.discovery_prefix, frame.id, config.mqtt.base_topic, "1.0"
        )
        assert b"SECRET" not in payload


@pytest.mark.usefixtures("gc_paused")
def test_removal_and_stale_frames() -> None:
    assert discovery.removal(PREFIX, "hall") == (topics.discovery(PREFIX, "hall"), b"")
    ours = {f: discovery.message(PREFIX, f, BASE, "1")[1] for f in ("kitchen", "hall", "attic")}
    other_base = discovery.message(PREFIX, "garage", "elsewhere", "1")
    retained = {topics.discovery(PREFIX, f): p for f, p in ours.items()}
    retained[other_base[0]] = other_base[1]  # another installation on the same broker
    retained[topics.discovery(PREFIX, "cellar")] = b""  # already removed
    retained["homeassistant/device/zigbee_lamp/config"] = b'{"o": {"name": "z2m"}}'
    retained[topics.discovery(PREFIX, "porch")] = b"not json"
    retained[topics.discovery(PREFIX, "shed")] = b"[" * 5000  # too deep for Python's json
    assert discovery.stale(["kitchen"], retained, PREFIX, BASE) == ["attic", "hall"]
    assert discovery.stale(["kitchen", "hall", "attic"], retained, PREFIX, BASE) == []


def test_last_sync_template_gives_an_iso_time_with_zone() -> None:
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment()
    # Home Assistant's as_datetime turns a unix time into an aware UTC datetime.
    env.globals["as_datetime"] = lambda v: datetime.fromtimestamp(v, UTC)
    render = env.from_string(discovery.LAST_SYNC).render
    parsed = datetime.fromisoformat(render(value_json={"synced_at": 1763884800}))
    assert parsed.tzinfo is not None and parsed.timestamp() == 1763884800
    assert render(value_json={"synced_at": None}) == "None"
    trig = env.from_string(cmps()["touch_next"]["val_tpl"]).render
    assert trig(value_json={"event": "touch", "action": "next"}) == "next"
    assert trig(value_json={"event": "shown", "picture": "x"}) == ""


# --- the checker itself must catch what Home Assistant rejects -----------------------------


def _broken(change: str) -> dict[str, Any]:
    d = copy.deepcopy(doc())
    c = d["cmps"]
    if change == "tilde":
        d["~"] = "titanoframe/kitchen"
    elif change == "avty_t_with_image_list":
        d["avty_t"] = d.pop("avty")[0]["t"]
    elif change == "content_type_with_url":
        c["picture"]["cont_type"] = "image/jpeg"
    elif change == "bad_unit":
        c["rssi"]["unit_of_meas"] = "%"
    elif change == "no_unique_id":
        del c["count"]["uniq_id"]
    elif change == "unknown_component_key":
        c["count"]["stat_tpl"] = "{{ value }}"
    elif change == "unknown_device_key":
        d["dev"]["colour"] = "red"
    elif change == "config_sensor":
        c["rssi"]["ent_cat"] = "config"
    elif change == "timestamp_state_class":
        c["last_sync"]["stat_cla"] = "measurement"
    elif change == "wildcard_command":
        c["next"]["cmd_t"] = "titanoframe/+/cmd/next"
    elif change == "root_qos_only":
        d["qos"] = 1
        del c["next"]["qos"]
    elif change == "no_origin_name":
        d["o"] = {"sw": "1"}
    elif change == "no_image_topic":
        del c["picture"]["url_t"]
    return d


@pytest.mark.parametrize(
    "change",
    [
        "tilde",
        "avty_t_with_image_list",
        "content_type_with_url",
        "bad_unit",
        "no_unique_id",
        "unknown_component_key",
        "unknown_device_key",
        "config_sensor",
        "timestamp_state_class",
        "wildcard_command",
        "root_qos_only",
        "no_origin_name",
        "no_image_topic",
    ],
)
def test_checker_catches(change: str) -> None:
    problems = hacheck.check(_broken(change))
    assert problems and all(p.split(":")[0] in hacheck.versions() for p in problems)


def test_checker_knows_version_differences() -> None:
    d = doc()
    d["message_expiry_interval"] = 60  # a root key only from 2026.6
    assert hacheck.check(d, "2026.6.0") == []
    assert hacheck.check(d, "2024.11.3")
    assert hacheck.check(json.dumps(["not", "an", "object"])) == ["payload must be a JSON object"]


# --- the frame's own facts, and entities that read naturally -------------------------------


def test_firmware_is_the_frame_version_and_left_out_until_known() -> None:
    assert doc()["dev"]["sw"] == FIRMWARE and doc()["o"]["sw"] == "1.2.3"
    unknown = discovery.device_config("kitchen", BASE, "1.2.3")
    assert "sw" not in unknown["dev"] and unknown["o"]["sw"] == "1.2.3"
    assert hacheck.check(unknown) == []


def test_frame_facts_are_diagnostic_sensors() -> None:
    c = cmps()
    facts = (
        "uptime",
        "sync_status",
        "last_error",
        "mem_free",
        "boot",
        "pending",
        "rssi",
        "sd_free",
    )
    assert all(c[key]["ent_cat"] == "diagnostic" for key in facts)
    assert (c["uptime"]["dev_cla"], c["uptime"]["unit_of_meas"]) == ("duration", "s")
    assert (c["mem_free"]["dev_cla"], c["mem_free"]["unit_of_meas"]) == ("data_size", "B")
    assert c["boot"]["val_tpl"] == "{{ value_json.boot }}"
    assert c["sync_status"]["dev_cla"] == "enum" and c["sync_status"]["ops"] == list(STATE_SYNC)


# Home Assistant's generated dashboard (frontend, generate-lovelace-config) leaves out entities
# that have an entity category; its entities card's header toggle switches every row whose
# domain can be toggled (DOMAINS_TOGGLE: light, switch, ...) at once.
TOGGLED = {"light", "switch", "fan", "input_boolean", "humidifier", "valve", "lock"}


def test_the_dashboard_header_toggle_cannot_switch_display_and_pause_together() -> None:
    c = cmps()
    shown = {
        k for k, comp in c.items() if "ent_cat" not in comp and comp["p"] != "device_automation"
    }
    toggled = {k for k in shown if c[k]["p"] in TOGGLED}
    assert toggled == {"display"}  # the header toggle can only ever switch the display
    assert c["pause"]["p"] == "switch" and c["pause"]["ent_cat"] == "config"
    assert {"next", "previous", "picture"} <= shown
    assert (c["next"]["ic"], c["previous"]["ic"]) == ("mdi:skip-next", "mdi:skip-previous")


class This:
    """Home Assistant's `this` in MQTT templates: the entity's current state."""

    def __init__(self, state: str, attributes: dict[str, Any]) -> None:
        self.state, self.attributes = state, attributes


def test_light_level_is_a_percentage_of_the_sensor_range() -> None:
    jinja2 = pytest.importorskip("jinja2")
    light = cmps()["light"]
    assert light["unit_of_meas"] == "%" and "dev_cla" not in light  # not lux: not calibrated
    render = jinja2.Environment().from_string(light["val_tpl"]).render
    assert [render(value_json={"light": v}) for v in (0, 32768, 65535)] == ["0", "50", "100"]
    assert render(value_json={"light": None}) == "None"


def test_last_error_keeps_its_code_and_detail_until_the_next_error() -> None:
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment()
    comp = cmps()["last_error"]
    state, attrs = env.from_string(comp["val_tpl"]), env.from_string(comp["json_attr_tpl"])
    error = {"event": "error", "code": "sd_full", "detail": "3 listed pictures did not fit"}
    before = This("unknown", {})
    assert state.render(value_json=error, this=before) == "sd_full"
    held = json.loads(attrs.render(value_json=error, this=before))
    assert held == {"code": "sd_full", "detail": "3 listed pictures did not fit"}
    now = This("sd_full", held)
    touch = {"event": "touch", "action": "next"}
    assert state.render(value_json=touch, this=now) == "sd_full"
    assert json.loads(attrs.render(value_json=touch, this=now)) == held

"""Home Assistant MQTT device discovery for each frame. Pure, no I/O.

One retained payload per frame on `<prefix>/device/titanoframe_<frame>/config` (docs/protocol.md
§5) describes the whole device: `dev` and `o` blocks and one `cmps` entry per entity or device
trigger. Keys use Home Assistant's abbreviations. Rules followed (Home Assistant 2024.11 and
later read device discovery):

- Root keys are only `dev`, `o`, `cmps` and `avty`: any other root key (even `~`) makes Home
  Assistant reject the whole payload.
- Availability is given once at the root as an `avty` list, which every component inherits
  unless it sets its own. The list form (not `avty_t`) matters: a root `avty_t` would be copied
  into the image component next to its own `avty`, and the two keys together are invalid.
- Every component sets `qos` itself: a root `qos` is inherited only from Home Assistant 2026.6.
- Entities have stable unique ids `titanoframe_<frame>_<entity>`.

Availability: every entity follows the frame's `status` topic, because commands go straight to
the frame and its state comes from the frame, whether the bridge runs or not. The bridge's own
entities for the frame (held removals, their confirm button, frame id shared:
`bridgedevice.frame_components`) follow the bridge's status instead. The image entity alone
needs both the frame and the bridge (`avty_mode` `all`): its URL comes from the `picture`
topic that only the bridge writes, so with the bridge down the picture shown would be stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from bridge import bridgedevice
from common import topics

MANUFACTURER = "Adafruit"
MODEL = "PyPortal Titano"
ORIGIN = "titanoframe"
QOS = 1

Component = dict[str, Any]


def _uid(frame: str, entity: str) -> str:
    return f"{topics.DEVICE_PREFIX}{frame}_{entity}"


def _state_sensor(state: str, name: str, template: str, **extra: Any) -> Component:
    return {"p": "sensor", "name": name, "stat_t": state, "val_tpl": template, "qos": QOS, **extra}


def _switch(base: str, frame: str, name: str, command: str, field: str, **extra: Any) -> Component:
    return {
        "p": "switch",
        "name": name,
        "cmd_t": topics.cmd(base, frame, command),
        "stat_t": topics.state(base, frame),
        "val_tpl": f"{{{{ 'ON' if value_json.{field} else 'OFF' }}}}",
        "qos": QOS,
        **extra,
    }


def _button(base: str, frame: str, name: str, command: str, **extra: Any) -> Component:
    cmd = topics.cmd(base, frame, command)
    return {"p": "button", "name": name, "cmd_t": cmd, "qos": QOS, **extra}


def _light(base: str, frame: str) -> Component:
    state = topics.state(base, frame)
    return {
        "p": "light",
        "name": "Display",
        "ic": "mdi:image-frame",
        "cmd_t": topics.cmd(base, frame, "display"),
        "stat_t": state,
        "stat_val_tpl": "{{ value_json.display }}",
        "bri_cmd_t": topics.cmd(base, frame, "brightness"),
        "bri_stat_t": state,
        "bri_val_tpl": "{{ value_json.brightness }}",
        "bri_scl": 100,
        "pl_on": "ON",
        "pl_off": "OFF",
        "qos": QOS,
    }


def _interval(base: str, frame: str) -> Component:
    return {
        "p": "number",
        "name": "Interval",
        "ic": "mdi:timer-outline",
        "cmd_t": topics.cmd(base, frame, "interval"),
        "stat_t": topics.state(base, frame),
        "val_tpl": "{{ value_json.interval }}",
        "min": 5,
        "max": 86400,
        "step": 1,
        "mode": "box",
        "unit_of_meas": "s",
        "ent_cat": "config",
        "qos": QOS,
    }


def _controls(base: str, frame: str) -> dict[str, Component]:
    # Display is the one switchable entity without a category. Home Assistant's generated
    # dashboard leaves out entities that have one, and its card's header toggle switches every
    # switchable row at once: with Pause among them, "all on" paused the frame.
    auto = {"ic": "mdi:brightness-auto", "ent_cat": "config"}
    pause = {"ic": "mdi:pause", "ent_cat": "config"}
    return {
        "display": _light(base, frame),
        "pause": _switch(base, frame, "Pause", "pause", "paused", **pause),
        "auto_brightness": _switch(
            base, frame, "Auto brightness", "auto_brightness", "auto_brightness", **auto
        ),
        "next": _button(base, frame, "Next", "next", ic="mdi:skip-next"),
        "previous": _button(base, frame, "Previous", "previous", ic="mdi:skip-previous"),
        "sync": _button(base, frame, "Sync", "sync", ent_cat="config", ic="mdi:sync"),
        "interval": _interval(base, frame),
        # The bridge writes these to Immich (the picture shown; answers on the event topic).
        "like": {**_button(base, frame, "Favourite this photo", "like"), "ic": "mdi:heart"},
        "hide": {**_button(base, frame, "Hide this photo", "hide"), "ic": "mdi:eye-off"},
    }


def _picture(base: str, frame: str) -> Component:
    return {
        "p": "image",
        "name": "Picture",
        "url_t": topics.picture(base, frame),
        "url_tpl": "{{ value_json.url }}",
        "json_attr_t": topics.picture(base, frame),
        "avty": [{"t": topics.status(base, frame)}, {"t": topics.bridge_status(base)}],
        "avty_mode": "all",
        "qos": QOS,
    }


# Timestamp sensors need ISO 8601 with a zone; `as_datetime` of a unix time gives UTC with
# `+00:00`. Before the first sync `synced_at` is null and the template says `None` (unknown).
LAST_SYNC = "{{ as_datetime(value_json.synced_at) if value_json.synced_at else None }}"
# The light sensor's raw 0-65535 reading as a percentage of its range (not calibrated in lux).
LIGHT = (
    "{{ (value_json.light * 100 / 65535) | round(0) | int"
    " if value_json.light is number else None }}"
)
# The last `error` event: its code is the state, its detail an attribute. Other events keep the
# state and attributes as they are (`this` is the entity itself in MQTT templates).
LAST_ERROR = "{{ value_json.code if value_json.event == 'error' else this.state }}"
LAST_ERROR_ATTRS = (
    "{{ ({'code': value_json.code, 'detail': value_json.detail} if value_json.event == 'error'"
    " else {'code': this.attributes.get('code'), 'detail': this.attributes.get('detail')})"
    " | tojson }}"
)
SYNC_STATES = ["idle", "syncing", "offline", "error"]


def _sensors(base: str, frame: str) -> dict[str, Component]:
    state = topics.state(base, frame)
    measure, diag = {"stat_cla": "measurement"}, {"ent_cat": "diagnostic"}
    pictures = {"unit_of_meas": "pictures", **measure}
    data_size = {"dev_cla": "data_size", "unit_of_meas": "MB", **measure, **diag}
    signal = {"dev_cla": "signal_strength", "unit_of_meas": "dBm", **measure, **diag}
    # key: (name, state JSON field, extra keys)
    table: dict[str, tuple[str, str, dict[str, str]]] = {
        "count": ("Pictures", "count", {**pictures, "ic": "mdi:image-multiple"}),
        "pending": ("Pending downloads", "pending", {**pictures, "ic": "mdi:download", **diag}),
        "sd_free": ("SD free space", "sd_free_mb", data_size),
        "rssi": ("Wi-Fi signal", "rssi", signal),
        "uptime": ("Uptime", "uptime", {"dev_cla": "duration", "unit_of_meas": "s", **diag}),
        "mem_free": ("Free memory", "mem_free", {"dev_cla": "data_size", "unit_of_meas": "B",
                                                 **measure, **diag}),
        "boot": ("Boot id", "boot", {"ic": "mdi:identifier", **diag}),
    }  # fmt: skip
    sensors = {
        key: _state_sensor(state, name, f"{{{{ value_json.{field} }}}}", **extra)
        for key, (name, field, extra) in table.items()
    }
    light = {"unit_of_meas": "%", "ic": "mdi:brightness-5", **measure}
    sensors["light"] = _state_sensor(state, "Light level", LIGHT, **light)
    sensors["last_sync"] = _state_sensor(state, "Last sync", LAST_SYNC, dev_cla="timestamp", **diag)
    sensors["sync_status"] = _state_sensor(
        state, "Sync status", "{{ value_json.sync }}", dev_cla="enum", ops=SYNC_STATES,
        json_attr_t=state, json_attr_tpl="{{ {'error': value_json.error} | tojson }}",
        ic="mdi:cloud-sync", **diag,
    )  # fmt: skip
    event = topics.event(base, frame)
    sensors["last_error"] = _state_sensor(
        event, "Last error", LAST_ERROR, json_attr_t=event, json_attr_tpl=LAST_ERROR_ATTRS,
        ic="mdi:alert-circle-outline", **diag,
    )  # fmt: skip
    return sensors


TOUCH_ACTIONS = ("next", "previous", "pause")
# A finger held on the screen for a second (what it does in Immich is the frame's `long_press`).
HOLD_ACTION = "hold"


def _triggers(base: str, frame: str) -> dict[str, Component]:
    # Fires when a touch event's action equals the payload; other events render "".
    template = "{{ value_json.action if value_json.event == 'touch' else '' }}"
    presses = [(a, "button_short_press") for a in TOUCH_ACTIONS]
    return {
        f"touch_{action}": {
            "p": "device_automation",
            "atype": "trigger",
            "t": topics.event(base, frame),
            "type": kind,
            "stype": action,
            "pl": action,
            "val_tpl": template,
            "qos": 0,
        }
        for action, kind in [*presses, (HOLD_ACTION, "button_long_press")]
    }


def device_config(
    frame: str,
    base: str,
    sw_version: str,
    support_url: str | None = None,
    frame_version: str | None = None,
) -> dict[str, Any]:
    """The device-discovery document for one frame (before JSON encoding).

    `sw_version` is the bridge's (it writes the payload: the origin); the device's firmware is
    `frame_version`, the version the frame reports in its state, left out until it is known.
    """
    components = {**_controls(base, frame), "picture": _picture(base, frame)}
    components |= _sensors(base, frame) | _triggers(base, frame)
    components |= bridgedevice.frame_components(base, frame)
    for key, comp in components.items():
        if comp["p"] != "device_automation":
            comp["uniq_id"] = _uid(frame, key)
    origin: dict[str, str] = {"name": ORIGIN, "sw": sw_version}
    if support_url:
        origin["url"] = support_url
    device = {
        "ids": [f"{topics.DEVICE_PREFIX}{frame}"],
        "name": f"titanoframe {frame}",
        "mf": MANUFACTURER,
        "mdl": MODEL,
    }
    if frame_version:
        device["sw"] = frame_version
    return {
        "dev": device,
        "o": origin,
        "avty": [{"t": topics.status(base, frame)}],
        "cmps": components,
    }


def message(
    prefix: str,
    frame: str,
    base: str,
    sw_version: str,
    support_url: str | None = None,
    frame_version: str | None = None,
) -> tuple[str, bytes]:
    """(topic, payload) to publish retained at QoS 1 for one frame."""
    doc = device_config(frame, base, sw_version, support_url, frame_version)
    return topics.discovery(prefix, frame), json.dumps(doc, separators=(",", ":")).encode()


def removal(prefix: str, frame: str) -> tuple[str, bytes]:
    """(topic, empty payload): publishing it retained removes the frame's device from HA."""
    return topics.discovery(prefix, frame), b""


def _ours(payload: bytes, base: str, frame: str) -> bool:
    """Was this retained discovery payload written by a titanoframe bridge using `base`?

    Two installations may share a broker with different base topics; each removes only the
    devices whose availability points at its own base.
    """
    try:
        doc = json.loads(payload.decode())
    except (UnicodeDecodeError, ValueError, RecursionError):  # anyone may write these topics
        return False
    if not isinstance(doc, dict) or not isinstance(doc.get("o"), dict):
        return False
    avty = doc.get("avty")
    first = avty[0] if isinstance(avty, list) and avty else None
    topic = first.get("t") if isinstance(first, dict) else None
    return doc["o"].get("name") == ORIGIN and topic == topics.status(base, frame)


def stale(
    configured: Iterable[str], retained: Mapping[str, bytes], prefix: str, base: str
) -> list[str]:
    """Frames to remove: our device topics seen retained whose frame is no longer configured.

    `retained` maps each topic seen on `topics.discovery_filter(prefix)` to its payload;
    empty payloads (already removed) and other software's devices are ignored.
    """
    keep = set(configured)
    found = []
    for topic, payload in retained.items():
        frame = topics.parse_discovery(prefix, topic)
        if frame is not None and frame not in keep and payload and _ours(payload, base, frame):
            found.append(frame)
    return sorted(found)

"""Home Assistant device discovery for the bridge itself, as zigbee2mqtt shows its bridge.
Pure, no I/O.

One retained payload on `topics.bridge_discovery(prefix, base)` (docs/protocol.md §5). Every
entity reads the bridge's retained health document on `<base>/bridge/state` (the `/healthz`
body) and follows the bridge's `status` topic. Same rules as `bridge.discovery`: root keys only
`dev`, `o`, `avty`, `cmps`; `qos` in each component; abbreviated keys.

The bridge also writes three entities for each frame, which sit on the frame's own device
(`frame_components`, merged in by `bridge.discovery`) so that this payload stays the same size
however many frames there are (the broker refuses a message over its `max_packet_size`): the
removals the bridge holds back for the frame, a button that confirms them (publishes the frame
id on `<base>/bridge/cmd/confirm_removal`), and a problem sensor for a frame id that two boards
use at once. Earlier releases listed them here; components an earlier payload held that are no
longer wanted are published once reduced to `{"p": <platform>}`, which is how Home Assistant
removes a component (leaving it out of the payload would keep it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from common import topics

ORIGIN = "titanoframe"
QOS = 1
DIAG = {"ent_cat": "diagnostic"}

Component = dict[str, Any]


def _uid(base: str, key: str) -> str:
    return f"{_object_id(base)}_{key}"


def _object_id(base: str) -> str:
    return topics.bridge_discovery("p", base).split("/")[2]


def _sensor(state: str, name: str, template: str, **extra: Any) -> Component:
    return {"p": "sensor", "name": name, "stat_t": state, "val_tpl": template, "qos": QOS, **extra}


def _binary(state: str, name: str, template: str, **extra: Any) -> Component:
    return {"p": "binary_sensor", "name": name, "stat_t": state, "val_tpl": template,
            "qos": QOS, **extra}  # fmt: skip


def _field(frame: str, key: str) -> str:
    """`value_json.frames[frame][key]`, None (unknown) when the frame or key is missing."""
    return f"value_json.frames.get({frame!r}, {{}}).get({key!r})"


def _bridge(state: str) -> dict[str, Component]:
    immich = "{{ None if value_json.immich is none else ('ON' if value_json.immich else 'OFF') }}"
    return {
        "problem": _binary(
            state, "Problem", "{{ 'OFF' if value_json.status == 'ok' else 'ON' }}",
            dev_cla="problem", json_attr_t=state,
            json_attr_tpl="{{ {'reason': value_json.reason} | tojson }}", **DIAG,
        ),
        "immich": _binary(
            state, "Immich", immich, dev_cla="connectivity", json_attr_t=state,
            json_attr_tpl="{{ {'reason': value_json.immich_reason} | tojson }}", **DIAG,
        ),
        "version": _sensor(state, "Version", "{{ value_json.version }}", ic="mdi:tag", **DIAG),
        "last_poll": _sensor(
            state, "Last poll",
            "{{ as_datetime(value_json.last_poll) if value_json.last_poll is not none else None }}",
            dev_cla="timestamp", **DIAG,
        ),
        "poll_errors": _sensor(
            state, "Poll errors", "{{ value_json.poll_errors }}", stat_cla="total_increasing",
            ic="mdi:alert-outline", **DIAG,
        ),
        "last_error": _sensor(
            state, "Last error", "{{ value_json.last_error }}", ic="mdi:alert-circle-outline",
            **DIAG,
        ),
        "frames_configured": _sensor(
            state, "Frames configured", "{{ value_json.frames_configured }}",
            ic="mdi:image-frame", **DIAG,
        ),
    }  # fmt: skip


def frame_components(base: str, frame: str) -> dict[str, Component]:
    """The bridge's entities for one frame, for the frame's device (without unique ids).

    They read the bridge's state and the button writes to the bridge, so they follow the
    bridge's `status`, not the frame's.
    """
    state = topics.bridge_state(base)
    avty = {"avty": [{"t": topics.bridge_status(base)}]}
    held = {
        "held_since": f"{_field(frame, 'held_since')}",
        "held_until": f"{_field(frame, 'held_until')}",
    }
    held_attrs = "{{ {" + ", ".join(f"{k!r}: {v}" for k, v in held.items()) + "} | tojson }}"
    return {
        "held_removals": _sensor(
            state, "Held removals", f"{{{{ {_field(frame, 'held_removals')} }}}}",
            unit_of_meas="pictures", json_attr_t=state, json_attr_tpl=held_attrs,
            ic="mdi:delete-clock", **avty, **DIAG,
        ),
        "confirm_removal": {
            "p": "button", "name": "Confirm removal",
            "cmd_t": topics.bridge_cmd(base, "confirm_removal"), "pl_prs": frame,
            "ic": "mdi:delete-alert", "ent_cat": "config", "qos": QOS, **avty,
        },
        "shared_id": _binary(
            state, "Frame id shared",
            f"{{{{ 'ON' if {_field(frame, 'shared_id')} else 'OFF' }}}}",
            dev_cla="problem", json_attr_t=state,
            json_attr_tpl=f"{{{{ {{'boards': {_field(frame, 'boards')}}} | tojson }}}}",
            **avty, **DIAG,
        ),
    }  # fmt: skip


def _removed(previous: bytes | None, keep: Iterable[str]) -> dict[str, Component]:
    """Stubs removing the components of an earlier payload that are no longer wanted."""
    try:
        doc = json.loads(previous.decode()) if previous else None
    except (UnicodeDecodeError, ValueError, RecursionError):  # anyone may write these topics
        return {}
    cmps = doc.get("cmps") if isinstance(doc, dict) else None
    if not isinstance(cmps, dict):
        return {}
    wanted = set(keep)
    return {
        key: {"p": comp["p"]}
        for key, comp in cmps.items()
        if key not in wanted and isinstance(comp, dict) and isinstance(comp.get("p"), str)
        and len(comp) > 1
    }  # fmt: skip


def device_config(
    base: str,
    sw_version: str,
    support_url: str | None = None,
    previous: bytes | None = None,
) -> dict[str, Any]:
    """The bridge's device-discovery document; `previous` is the payload the broker holds.

    Its size does not depend on the frames: the removal stubs are smaller than the components
    they replace, and `previous` got through the broker.
    """
    components = _bridge(topics.bridge_state(base))
    for key, comp in components.items():
        comp["uniq_id"] = _uid(base, key)
    components |= _removed(previous, components)
    origin: dict[str, str] = {"name": ORIGIN, "sw": sw_version}
    if support_url:
        origin["url"] = support_url
    return {
        "dev": {
            "ids": [_object_id(base)],
            "name": "titanoframe bridge",
            "mf": "titanoframe",
            "mdl": "Bridge",
            "sw": sw_version,
        },
        "o": origin,
        "avty": [{"t": topics.bridge_status(base)}],
        "cmps": components,
    }


def message(
    prefix: str,
    base: str,
    sw_version: str,
    support_url: str | None = None,
    previous: bytes | None = None,
) -> tuple[str, bytes]:
    """(topic, payload) to publish retained at QoS 1 for the bridge's device."""
    doc = device_config(base, sw_version, support_url, previous)
    topic = topics.bridge_discovery(prefix, base)
    return topic, json.dumps(doc, separators=(",", ":")).encode()

"""Checks a Home Assistant MQTT device-discovery payload against the rules vendored in
tests/data/homeassistant/ (read from Home Assistant's source, one set per release in
version_compat.json). Pure: payload in, list of problems out ([] when valid).

It follows Home Assistant's own steps: expand abbreviations (only those the release knows),
check the root, `dev` and `o` (unknown keys there reject the whole payload), copy the shared root
options into each component, inject `device`/`origin`, then check each component against its
platform's keys, types, exclusive groups and rules. It is stricter in one place: an unknown key
inside a component is reported, where Home Assistant silently drops it, because a dropped key
(a mistyped abbreviation) is a feature that quietly does not work.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from tests.kit import DATA as TEST_DATA

DATA = TEST_DATA / "homeassistant"

# Not in the vendored JSON: Home Assistant's sensor DEVICE_CLASS_UNITS and
# DEVICE_CLASS_STATE_CLASSES (components/sensor/const.py), for the classes we may use.
_BYTES = "B kB MB GB TB PB EB ZB YB KiB MiB GiB TiB PiB EiB ZiB YiB bit kbit Mbit Gbit"
INFORMATION: set[str | None] = set(_BYTES.split())
ALL_STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
SENSOR_UNITS: dict[str, tuple[set[str | None], set[str]]] = {
    "data_size": (INFORMATION, ALL_STATE_CLASSES),
    "signal_strength": ({"dB", "dBm"}, {"measurement"}),
    "illuminance": ({"lx"}, {"measurement"}),
    "duration": ({"d", "h", "min", "s", "ms", "μs"}, ALL_STATE_CLASSES),
    "timestamp": ({None}, set()),
    "date": ({None}, set()),
    "enum": ({None}, set()),
}
ON_COMMAND_TYPES = ["first", "last", "brightness"]
AVAILABILITY_ENTRY = {"topic", "payload_available", "payload_not_available", "value_template"}
ROOT_AVAILABILITY = {"availability_topic", "availability_template", "availability_mode"}
ROOT_AVAILABILITY |= {"availability", "payload_available", "payload_not_available"}


@cache
def rules() -> dict[str, Any]:
    return {
        name: json.loads((DATA / f"{name}.json").read_text())
        for name in ("abbreviations", "mqtt_discovery_schema", "device_classes", "version_compat")
    }


def versions() -> list[str]:
    return list(rules()["version_compat"])


def _abbr(version: str, table: str) -> dict[str, str]:
    """The abbreviation table as `version` knows it (newer abbreviations stay unexpanded)."""
    present = rules()["version_compat"][version]["abbr_present"]
    full = rules()["abbreviations"][table]
    return {k: v for k, v in full.items() if present.get(k, True)}


def _expand(
    doc: Mapping[str, Any], table: Mapping[str, str], where: str, out: list[str]
) -> dict[str, Any]:
    expanded: dict[str, Any] = {}
    for key, value in doc.items():
        name = table.get(key, key)
        if name in expanded:
            out.append(f"{where}: {name} given twice (abbreviated and in full)")
        expanded[name] = value
    return expanded


# --- value types, keyed by the descriptions used in mqtt_discovery_schema.json -------------


def _topic(value: Any, subscribe: bool) -> bool:
    if not isinstance(value, str) or not value or "\0" in value or len(value.encode()) > 65535:
        return False
    if not subscribe:
        return "+" not in value and "#" not in value
    levels = value.split("/")
    for i, level in enumerate(levels):
        if "+" in level and level != "+":
            return False
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
    return True


def _template(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:  # Jinja2 is optional here: with it, templates are parsed as Home Assistant would.
        import jinja2  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return value.count("{{") == value.count("}}") and value.count("{%") == value.count("%}")
    try:
        jinja2.Environment().parse(value)
    except jinja2.TemplateSyntaxError:
        return False
    return True


def _string(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _float(value: Any) -> float | None:
    try:
        return float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _int_at_least(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _url(value: Any, schemes: tuple[str, ...] = ("http://", "https://")) -> bool:
    return isinstance(value, str) and value.startswith(schemes) and len(value) > 8


def _enum(desc: str) -> Callable[[Any], bool]:
    if desc.startswith("enum VALUES_ON_COMMAND_TYPE"):
        allowed: list[Any] = ON_COMMAND_TYPES
    else:
        match = re.match(r"enum (\[.*?\]|\{.*?\})", desc)
        assert match, desc
        allowed = list(ast.literal_eval(match.group(1)))
    nullable, lower = desc.endswith("or null"), "(lower-cased)" in desc

    def check(value: Any) -> bool:
        if value is None:
            return nullable
        return (value.lower() if lower and isinstance(value, str) else value) in allowed

    return check


def _availability(value: Any, where: str, out: list[str], version: str) -> None:
    entries = value if isinstance(value, list) else [value]
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            out.append(f"{where}.availability[{i}]: must be an object")
            continue
        entry = _expand(entry, _abbr(version, "abbreviations"), where, out)
        for key in set(entry) - AVAILABILITY_ENTRY:
            out.append(f"{where}.availability[{i}]: unknown key {key}")
        if not _topic(entry.get("topic"), subscribe=True):
            out.append(f"{where}.availability[{i}]: topic missing or invalid")


def _checker(desc: str) -> Callable[[Any], bool]:
    simple: dict[str, Callable[[Any], bool]] = {
        "boolean": lambda v: (
            isinstance(v, (bool, int))
            or str(v).lower() in {"on", "off", "yes", "no", "true", "false", "1", "0"}
        ),
        "publish_topic": lambda v: _topic(v, subscribe=False),
        "subscribe_topic": lambda v: _topic(v, subscribe=True),
        "template": _template,
        "string (must": lambda v: isinstance(v, str),
        "string or null": lambda v: v is None or _string(v),
        "string": _string,
        "url": _url,
        "icon": lambda v: isinstance(v, str) and ":" in v,
        "int in": lambda v: v in (0, 1, 2) and not isinstance(v, bool),
        "int seconds": lambda v: isinstance(v, dict) or _int_at_least(0)(v),
        "int >= 0": _int_at_least(0),
        "int >= 1": _int_at_least(1),
        "float >= 0.001": lambda v: (_float(v) or 0) >= 0.001,
        "float": lambda v: _float(v) is not None,
        "list of strings": lambda v: (
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
        ),
        "list": lambda v: True,
        "list of {": lambda v: isinstance(v, (list, dict)),
        "device object": lambda v: isinstance(v, dict),
        "origin object": lambda v: isinstance(v, dict),
    }
    if desc.startswith("enum"):
        return _enum(desc)
    prefix = max((p for p in simple if desc.startswith(p)), key=len, default=None)
    assert prefix is not None, f"no checker for {desc!r}"
    return simple[prefix]


# --- device, origin, root ---------------------------------------------------------------------


def _device(value: Any, where: str, out: list[str], version: str, child: bool = False) -> None:
    if not isinstance(value, dict):
        out.append(f"{where}: must be an object")
        return
    table = _abbr(version, "device")
    dev = _expand(value, table, where, out)
    allowed = set(table.values()) | {"via_device"}
    if not child:
        allowed.discard("child_device")
    for key in sorted(set(dev) - allowed):
        out.append(f"{where}: unknown key {key} (rejects the whole payload)")
    ids, conns = dev.get("identifiers", []), dev.get("connections", [])
    ids_list = [ids] if isinstance(ids, str) else ids
    if not isinstance(ids_list, list) or not all(isinstance(i, str) for i in ids_list):
        out.append(f"{where}: identifiers must be a string or a list of strings")
    if not ids_list and not conns:
        out.append(f"{where}: needs identifiers or connections")
    for key in ("manufacturer", "model", "model_id", "name", "hw_version", "sw_version"):
        if key in dev and not isinstance(dev[key], str):
            out.append(f"{where}: {key} must be a string")
    if "configuration_url" in dev and not _url(
        dev["configuration_url"], ("http://", "https://", "homeassistant://")
    ):
        out.append(f"{where}: configuration_url must be an http(s) or homeassistant URL")


def _origin(value: Any, where: str, out: list[str], version: str) -> None:
    if not isinstance(value, dict):
        out.append(f"{where}: must be an object")
        return
    origin = _expand(value, _abbr(version, "origin"), where, out)
    for key in sorted(set(origin) - {"name", "sw_version", "support_url"}):
        out.append(f"{where}: unknown key {key} (rejects the whole payload)")
    if not isinstance(origin.get("name"), str) or not origin["name"]:
        out.append(f"{where}: name is required")
    url = origin.get("support_url")
    if url is not None and not _url(url, ("http://", "https://", "homeassistant://")):
        out.append(f"{where}: support_url must be an http(s) or homeassistant URL")


def _root_keys(version: str) -> set[str]:
    compat = rules()["version_compat"][version]
    keys = {"device", "origin", "components", "state_topic", "command_topic", "qos", "encoding"}
    keys |= ROOT_AVAILABILITY
    if compat["child_devices_supported"]:
        keys.add("child_devices")
    if compat["common_keys"]["message_expiry_interval"]:
        keys.add("message_expiry_interval")
    return keys


def _root(doc: Mapping[str, Any], version: str, out: list[str]) -> dict[str, Any]:
    root = _expand(doc, _abbr(version, "abbreviations"), "root", out)
    for key in sorted(set(root) - _root_keys(version)):
        out.append(f"root: key {key!r} not allowed (rejects the whole payload)")
    if "device" not in root:
        out.append("root: dev is required")
    else:
        _device(root["device"], "dev", out, version)
    if "origin" not in root:
        out.append("root: o is required")
    else:
        _origin(root["origin"], "o", out, version)
    if not isinstance(root.get("components"), dict) or not root["components"]:
        out.append("root: cmps must be a non-empty object")
    if "availability_topic" in root and "availability" in root:
        out.append("root: avty_t and avty are mutually exclusive")
    if "availability" in root:
        _availability(root["availability"], "root", out, version)
    if root.get("qos", 0) not in (0, 1, 2):
        out.append("root: qos must be 0, 1 or 2")
    return root


# --- components -------------------------------------------------------------------------------


def _sensor_rules(comp: Mapping[str, Any], where: str, out: list[str]) -> None:
    device_class, unit = comp.get("device_class"), comp.get("unit_of_measurement")
    state_class = comp.get("state_class")
    if device_class is None:
        return
    if device_class not in SENSOR_UNITS:
        out.append(f"{where}: no unit table for device_class {device_class} in this checker")
        return
    units, state_classes = SENSOR_UNITS[device_class]
    if unit not in units:
        out.append(f"{where}: unit {unit!r} not valid for device_class {device_class}")
    if state_class is not None and state_class not in state_classes:
        out.append(f"{where}: state_class {state_class} impossible for device_class {device_class}")


def _platform_rules(platform: str, comp: Mapping[str, Any], where: str, out: list[str]) -> None:
    if platform == "sensor":
        _sensor_rules(comp, where, out)
    if platform == "image" and "url_topic" in comp and "content_type" in comp:
        out.append(f"{where}: content_type is not allowed with url_topic")
    if platform == "number":
        low, high = _float(comp.get("min", 0.0)), _float(comp.get("max", 100.0))
        if low is not None and high is not None and low > high:
            out.append(f"{where}: min must be <= max")


def _component(cid: str, raw: Any, root: Mapping[str, Any], version: str, out: list[str]) -> None:
    where = f"cmps.{cid}"
    schema = rules()["mqtt_discovery_schema"]
    if not re.fullmatch(r"[a-zA-Z0-9_-]+", cid):
        out.append(f"{where}: component id must match [a-zA-Z0-9_-]+")
    if not isinstance(raw, dict):
        out.append(f"{where}: must be an object")
        return
    comp = _expand(raw, _abbr(version, "abbreviations"), where, out)
    platform = comp.pop("platform", None)
    if platform not in schema["discovery_topic"]["supported_components"]:
        out.append(f"{where}: platform {platform!r} missing or unsupported")
        return
    if platform not in schema["platforms"]:
        out.append(f"{where}: platform {platform} is not described in the vendored rules")
        return
    if not comp:  # `{"p": <platform>}` alone removes the component (NOTES.md): nothing to check
        return
    spec = schema["platforms"][platform]
    described = {**spec["optional"], **spec["required_types"]}
    entity = platform not in ("device_automation", "tag")
    if entity and comp and "unique_id" not in comp:
        out.append(f"{where}: uniq_id is required")
    for key in sorted(set(comp) - set(described)):
        out.append(f"{where}: unknown key {key} (Home Assistant would drop it)")
    if "qos" in root and "qos" not in comp:
        out.append(f"{where}: set qos here; a root qos is inherited only from 2026.6")
    if "availability" in comp:
        _availability(comp["availability"], where, out, version)
    _merged_checks(platform, spec, described, comp, root, version, where, out)


def _merged_checks(
    platform: str,
    spec: Mapping[str, Any],
    described: Mapping[str, str],
    comp: dict[str, Any],
    root: Mapping[str, Any],
    version: str,
    where: str,
    out: list[str],
) -> None:
    """Checks on the component as Home Assistant sees it after merging the root into it."""
    merged = dict(comp)
    for key in rules()["version_compat"][version]["shared_options"]:
        if key in root and key not in merged:
            merged[key] = root[key]
    merged["device"], merged["origin"] = root.get("device"), root.get("origin")
    for key in spec["required"]:
        if key not in merged:
            out.append(f"{where}: {key} is required")
    for key, value in merged.items():
        if key in described and not _checker(described[key])(value):
            out.append(f"{where}: {key}={value!r} is not {described[key]}")
    for group, keys in spec.get("mutually_exclusive_groups", {}).items():
        if sum(k in merged for k in keys) > 1:
            out.append(f"{where}: {' and '.join(keys)} are exclusive ({group}), after merging root")
    for keys in spec.get("required_one_of", []):
        if not any(k in merged for k in keys):
            out.append(f"{where}: one of {', '.join(keys)} is required")
    for key, allowed in spec.get("required_values", {}).items():
        if merged.get(key) not in allowed:
            out.append(f"{where}: {key} must be one of {allowed}")
    _platform_rules(platform, merged, where, out)


def check(payload: bytes | str | Mapping[str, Any], version: str | None = None) -> list[str]:
    """Problems with a device-discovery payload for `version` (default: every known release)."""
    if isinstance(payload, (bytes, str)):
        try:
            doc = json.loads(payload)
        except ValueError as e:
            return [f"payload is not JSON: {e}"]
    else:
        doc = payload
    if not isinstance(doc, dict):
        return ["payload must be a JSON object"]
    problems: list[str] = []
    for ver in [version] if version else versions():
        out: list[str] = []
        root = _root(doc, ver, out)
        for cid, raw in (root.get("components") or {}).items():
            _component(cid, raw, root, ver, out)
        problems += [f"{ver}: {p}" for p in out]
    return problems

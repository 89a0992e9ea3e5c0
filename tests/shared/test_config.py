"""The config file: ${VAR} secrets, every error at once with its path, defaults, redaction."""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common import configmodel
from common.caption import FIELDS as CAPTION_FIELDS
from common.config import (
    BridgeConfig,
    Config,
    ConfigError,
    ImageProfile,
    ImmichConfig,
    MqttConfig,
    RendererConfig,
    ScheduleEntry,
    Source,
    dump_redacted,
    load_config,
    parse_config,
    redacted,
    secret_values,
)
from tests.kit import ROOT

EXAMPLE = ROOT / "config.example.yaml"

# Distinctive values, so a leak anywhere is found by a plain substring search.
SECRETS = {
    "IMMICH_API_KEY": "immich-key-Zq81xLw",
    "MQTT_PASSWORD": "mqtt-pw-Hv27pQe",
    "MQTT_HA_PASSWORD": "ha-pw-Ty55kRb",
    "RENDER_URL_KEY": "url-key-Jm09sNc",
    "RENDERER_MQTT_PASSWORD": "renderer-pw-Ux33dFa",
    "KITCHEN_SECRET": "kitchen-secret-Pw64gYh",
    "HALL_SECRET": "hall-secret-Ld12vBo",
}

MINIMAL = "frames:\n  den:\n    sources: [{folder: .}]\n"


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=SECRETS if env is None else env)
    return info.value.errors


def assert_no_secret(text: str) -> None:
    for value in SECRETS.values():
        assert value not in text


# --- the example file -------------------------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path) -> Path:
    shutil.copy(EXAMPLE, tmp_path / "config.yaml")
    (tmp_path / "photos").mkdir()
    return tmp_path / "config.yaml"


def test_example_loads_with_its_environment(example: Path) -> None:
    config = load_config(example, env=SECRETS)
    assert [f.id for f in config.frames] == ["kitchen", "hall"]
    assert config.immich == ImmichConfig("http://immich:2283", SECRETS["IMMICH_API_KEY"], 10.0)
    kitchen = config.frame("kitchen")
    assert kitchen is not None and kitchen.secret == SECRETS["KITCHEN_SECRET"]
    assert Source("folder", str(example.parent / "photos")) in kitchen.sources
    assert config.mqtt.homeassistant_password == SECRETS["MQTT_HA_PASSWORD"]


def test_example_optional_secrets_may_be_unset(example: Path) -> None:
    env = {k: v for k, v in SECRETS.items() if "HA_" not in k and "RENDERER_" not in k}
    config = load_config(example, env=env)
    assert config.mqtt.homeassistant_password is None
    assert config.renderer.mqtt_password is None


def _field_names(cls: type[Any]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def test_example_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    lines = text.splitlines()
    sections = {
        "immich": ImmichConfig,
        "mqtt": MqttConfig,
        "renderer": RendererConfig,
        "bridge": BridgeConfig,
    }
    for section, cls in sections.items():
        for name in _field_names(cls):
            _assert_commented_key(lines, f"  {name}:", f"{section}.{name}")
    for name in _field_names(ImageProfile):
        _assert_commented_key(lines, f"      {name}:", f"image.{name}")
    frame_keys = [n for n in _field_names(configmodel.FrameConfig) if n != "id"]
    for name in frame_keys:
        _assert_commented_key(lines, f"    {name}:", f"frames.<id>.{name}")
    comments = "\n".join(line for line in lines if line.lstrip().startswith("#"))
    words = [
        *configmodel.SOURCE_KINDS,
        *configmodel.EXCLUDE_KINDS,
        *configmodel.SCHEDULE_COMMANDS,
        *configmodel.DAYS,
        *configmodel.FITS,
        *configmodel.FORMATS,
        *configmodel.STACKS,
        "stacks",
        "at",
        "days",
    ]
    for word in words:
        assert re.search(rf"\b{word}\b", comments), f"{word} is not explained in a comment"
    for field in CAPTION_FIELDS:
        assert f"{{{field}" in comments, f"caption field {field} is not documented"


def _assert_commented_key(lines: list[str], prefix: str, what: str) -> None:
    found = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    assert found, f"{what} is missing from config.example.yaml"
    assert lines[found[0] - 1].lstrip().startswith("#"), f"{what} has no comment above it"


# --- errors -----------------------------------------------------------------------------------

BAD = """\
immich: {url: ftp://immich, api_key: "${IMMICH_API_KEY}", timout: 5}
mqtt: {port: 70000, base_topic: "a/#"}
renderer: {listen: "0.0.0.0:99999", cache_max_mb: 8}
bridge: {poll_interval: 2, max_removal: 0, removal_hold: -1, timezone: Mars/Olympus}
framez: {}
frames:
  kitchen:
    sources: [{favorits: true}, {folder: ./nope}, album]
    image: {fit: zoom, format: bmp24}
    schedule: [{at: "25:00", display: maybe, brightness: 101, days: [mon, funday]}]
  renderer: {sources: [{favorites: true}]}
  Big: {sources: [{tag: x}]}
"""


def test_every_error_is_reported_at_once_with_its_path(tmp_path: Path) -> None:
    errors = errors_of(write(tmp_path, BAD))
    missing = tmp_path / "nope"
    expected = [
        "framez: unknown key (did you mean 'frames'?), "
        "expected one of immich|mqtt|renderer|bridge|frames, got 'framez'",
        "immich.timout: unknown key (did you mean 'timeout'?), "
        "expected one of url|api_key|timeout, got 'timout'",
        "immich.url: expected an http:// or https:// URL, got 'ftp://immich'",
        "mqtt.port: expected an integer from 1 to 65535, got 70000",
        "mqtt.base_topic: expected an MQTT topic without wildcards, '%', spaces or a leading "
        "'/' or '$', got 'a/#'",
        "renderer.listen: expected host:port, with a port from 1 to 65535, got '0.0.0.0:99999'",
        "renderer.cache_max_mb: expected an integer of at least 16, got 8",
        "bridge.poll_interval: expected a number of at least 5, got 2",
        "bridge.max_removal: expected a number greater than 0 and at most 1, got 0",
        "bridge.removal_hold: expected a number from 0 to 7776000, got -1",
        "bridge.timezone: unknown time zone, expected a name such as Europe/Berlin or UTC, "
        "got 'Mars/Olympus'",
        "frames.kitchen.sources[0].favorits: unknown source (did you mean 'favorites'?), "
        "expected favorites|album|person|tag|memories|folder, got 'favorits'",
        f"frames.kitchen.sources[1].folder: no such directory {str(missing)!r}, got './nope'",
        "frames.kitchen.sources[2]: expected one source key, one of "
        "favorites|album|person|tag|memories|folder, got 'album'",
        "frames.kitchen.image.format: expected one of bmp8|bmp16, got 'bmp24'",
        "frames.kitchen.image.fit: expected one of contain|cover|blur|smart, got 'zoom'",
        "frames.kitchen.schedule[0].at: expected a time \"HH:MM\" from 00:00 to 23:59, got '25:00'",
        "frames.kitchen.schedule[0].days: unknown day 'funday', expected days from "
        "mon|tue|wed|thu|fri|sat|sun, got ['mon', 'funday']",
        "frames.kitchen.schedule[0].display: expected ON or OFF, got 'maybe'",
        "frames.kitchen.schedule[0].brightness: expected an integer from 0 to 100, got 101",
        "frames.renderer: frame id is reserved for a service's MQTT user "
        "(bridge|renderer|homeassistant), got 'renderer'",
        "frames.Big: expected a frame id matching [a-z0-9_-]{1,32}, got 'Big'",
    ]
    assert errors == expected


def test_immich_sources_need_the_immich_section(tmp_path: Path) -> None:
    text = "frames:\n  den:\n    sources: [{folder: .}, {album: Trips}, {memories: true}]\n"
    assert errors_of(write(tmp_path, text)) == [
        "frames.den.sources[1].album: this source needs an `immich:` section (url, api_key), "
        "got 'Trips'",
        "frames.den.sources[2].memories: this source needs an `immich:` section (url, api_key), "
        "got True",
    ]


def test_structural_errors(tmp_path: Path) -> None:
    text = """\
immich: {}
frames:
  den: {sources: [], image: [1], schedule: [{display: "OFF"}, {at: "07:00"}]}
  hall: {sources: [{favorites: false}, {album: ""}, {tag: x, album: y}]}
"""
    assert errors_of(write(tmp_path, text)) == [
        "immich.url: required key is missing, got None",
        "immich.api_key: required key is missing, got None",
        "frames.den.sources: a frame needs at least one source "
        "(favorites|album|person|tag|memories|folder), got []",
        "frames.den.image: expected a mapping of keys, got [1]",
        'frames.den.schedule[0].at: required key is missing, expected "HH:MM", got None',
        "frames.den.schedule[1]: expected at least one command "
        "(display|brightness|auto_brightness|pause|interval), got {'at': '07:00'}",
        "frames.hall.sources[0].favorites: expected true (remove the entry to turn it off), "
        "got False",
        "frames.hall.sources[1].album: must not be empty, got ''",
        "frames.hall.sources[2]: expected one source key, one of "
        "favorites|album|person|tag|memories|folder, got {'tag': 'x', 'album': 'y'}",
    ]


def test_a_config_needs_frames(tmp_path: Path) -> None:
    assert errors_of(write(tmp_path, "mqtt: {host: broker}\n")) == [
        "frames: required key is missing; a config needs at least one frame, got None"
    ]
    assert errors_of(write(tmp_path, "frames: {}\n")) == [
        "frames: expected at least one frame, such as `kitchen: {sources: [...]}`, got {}"
    ]
    assert errors_of(write(tmp_path, "- just\n- a list\n")) == [
        "config: expected a mapping of keys, got ['just', 'a list']"
    ]


def test_topics(tmp_path: Path) -> None:
    text = "mqtt: {base_topic: home/frames, discovery_prefix: home/frames}\n" + MINIMAL
    assert errors_of(write(tmp_path, text)) == [
        "mqtt.base_topic: expected a topic other than mqtt.discovery_prefix, got 'home/frames'"
    ]
    text = "mqtt: {base_topic: 'a/%u', discovery_prefix: 'ha/'}\n" + MINIMAL
    assert [e.split(":")[0] for e in errors_of(write(tmp_path, text))] == [
        "mqtt.base_topic",
        "mqtt.discovery_prefix",
    ]


def test_full_scan_may_not_be_more_frequent_than_polling(tmp_path: Path) -> None:
    text = "bridge: {poll_interval: 60, full_scan_interval: 30}\n" + MINIMAL
    assert errors_of(write(tmp_path, text)) == [
        "bridge.full_scan_interval: expected at least bridge.poll_interval (60), got 30"
    ]


def test_caption_is_checked_against_the_renderer_fields(tmp_path: Path) -> None:
    text = MINIMAL + "    image: {caption: '{taken:%Y} {weather}'}\n"
    (error,) = errors_of(write(tmp_path, text))
    assert error.startswith("frames.den.image.caption: caption field {weather} is unknown")


def test_yaml_syntax_and_duplicate_keys(tmp_path: Path) -> None:
    path = write(tmp_path, f"mqtt: {{password: {SECRETS['MQTT_PASSWORD']}: x}}\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}: invalid YAML at line 1, column ")
    assert_no_secret(error)
    path = write(tmp_path, MINIMAL + "  den:\n    sources: [{folder: .}]\n")
    assert errors_of(path) == [f"{path}: invalid YAML at line 4, column 3: duplicate key 'den'"]
    assert errors_of(tmp_path / "absent.yaml") == [
        f"{tmp_path / 'absent.yaml'}: cannot read the config file (No such file or directory)"
    ]


# --- secrets ----------------------------------------------------------------------------------


def test_secret_values_never_appear_in_errors(tmp_path: Path) -> None:
    text = f"""\
immich: {{url: "http://immich", api_key: ["{SECRETS["IMMICH_API_KEY"]}"]}}
mqtt: {{password: {{x: "{SECRETS["MQTT_PASSWORD"]}"}}, homeassistant_password: "${{NOPE}}"}}
renderer: {{url_key: [{SECRETS["RENDER_URL_KEY"]}], mqtt_password: "x${{MISSING}}"}}
frames:
  den:
    secret: ["{SECRETS["KITCHEN_SECRET"]}"]
    sources: [{{folder: .}}]
"""
    errors = errors_of(write(tmp_path, text))
    assert len(errors) == 6
    assert_no_secret("\n".join(errors))
    assert all(e.endswith("got '***'") for e in errors)
    assert (
        "mqtt.homeassistant_password: environment variable NOPE is not set "
        "(set it, or write ${NOPE:-default}), got '***'" in errors
    )


def test_redacted_dump_hides_secrets_and_reloads(example: Path) -> None:
    config = load_config(example, env=SECRETS)
    dump = dump_redacted(config)
    assert_no_secret(dump)
    assert_no_secret(repr(redacted(config)))
    assert dump.count("'***'") == len(SECRETS)
    again = parse_config(yaml.safe_load(dump), {}, example.parent)
    hidden: dict[str, Any] = {
        "immich": dataclasses.replace(config.immich, api_key="***") if config.immich else None,
        "mqtt": dataclasses.replace(config.mqtt, password="***", homeassistant_password="***"),
        "renderer": dataclasses.replace(config.renderer, url_key="***", mqtt_password="***"),
        "frames": tuple(dataclasses.replace(f, secret="***") for f in config.frames),
    }
    assert again == dataclasses.replace(config, **hidden)


def test_secret_values_lists_every_secret(example: Path) -> None:
    config = load_config(example, env=SECRETS)
    assert sorted(secret_values(config)) == sorted(SECRETS.values())


# --- environment ------------------------------------------------------------------------------


def test_placeholders(tmp_path: Path) -> None:
    text = """\
mqtt:
  host: "${HOST:-broker.lan}"
  port: "${PORT}"
  username: "u-${USER_SUFFIX:-x}"
  password: "pa$$word"
  tls: "${TLS}"
  homeassistant_password: "${EMPTY:-}"
frames:
  den: {sources: [{folder: "${PHOTOS}"}]}
"""
    (tmp_path / "pics").mkdir()
    env = {"PORT": "8883", "USER_SUFFIX": "", "TLS": "true", "PHOTOS": "pics"}
    config = load_config(write(tmp_path, text), env=env)
    assert config.mqtt == MqttConfig(
        host="broker.lan", port=8883, username="u-x", password="pa$word", tls=True
    )
    assert config.frames[0].sources == (Source("folder", str(tmp_path / "pics")),)


def test_missing_variable_names_key_and_variable(tmp_path: Path) -> None:
    text = 'mqtt: {host: "${BROKER_HOST}", port: "${PORT}"}\n' + MINIMAL
    assert errors_of(write(tmp_path, text), env={"PORT": "many"}) == [
        "mqtt.host: environment variable BROKER_HOST is not set "
        "(set it, or write ${BROKER_HOST:-default}), got '${BROKER_HOST}'",
        "mqtt.port: expected an integer from 1 to 65535, got 'many'",
    ]


def test_numbers_as_yaml_strings_are_type_errors(tmp_path: Path) -> None:
    text = 'mqtt: {port: "1883", tls: "yes"}\n' + MINIMAL
    assert errors_of(write(tmp_path, text)) == [
        "mqtt.port: expected an integer from 1 to 65535, got '1883'",
        "mqtt.tls: expected true or false, got 'yes'",
    ]


# --- defaults and paths -----------------------------------------------------------------------


def test_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL), env={})
    assert config.immich is None
    assert config.mqtt == MqttConfig()
    assert config.bridge == BridgeConfig()
    assert config.renderer == RendererConfig(cache_dir=tmp_path / "cache")
    assert (config.renderer.host, config.renderer.port) == ("0.0.0.0", 8080)
    (frame,) = config.frames
    assert frame.image == ImageProfile("bmp16", "contain", False, None)
    assert (frame.secret, frame.exclude, frame.schedule) == (None, (), ())
    assert config.frame("den") is frame and config.frame("nope") is None
    assert isinstance(config, Config)


def test_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc"
    (conf_dir / "album").mkdir(parents=True)
    (conf_dir / "ca.pem").write_text("-----")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    text = """\
mqtt: {tls: true, ca_file: ca.pem}
renderer: {cache_dir: ../var/cache, listen: "[::]:9000"}
frames:
  den: {sources: [{folder: album}, {folder: ./album/}]}
"""
    config = load_config(write(conf_dir, text), env={})
    assert config.mqtt.ca_file == str(conf_dir / "ca.pem")
    assert config.renderer.cache_dir == tmp_path / "var" / "cache"
    assert (config.renderer.host, config.renderer.port) == ("::", 9000)
    assert [s.value for s in config.frames[0].sources] == [str(conf_dir / "album")] * 2
    text = "mqtt: {ca_file: missing.pem}\n" + MINIMAL.replace("{folder: .}", "{folder: photos}")
    assert errors_of(write(conf_dir, text)) == [
        f"mqtt.ca_file: no such file {str(conf_dir / 'missing.pem')!r}, got 'missing.pem'",
        f"frames.den.sources[0].folder: no such directory {str(conf_dir / 'photos')!r}, "
        "got 'photos'",
    ]


# --- schedule ---------------------------------------------------------------------------------


def test_schedule_parsing_and_normalisation(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """\
    schedule:
      - {at: 23:00, display: OFF}
      - {at: "7:05", days: [Friday, mon, MON], display: on, brightness: 80, pause: false}
      - {at: "06:30", days: "sat, sun", auto_brightness: "ON", interval: "120"}
"""
    )
    (frame,) = load_config(write(tmp_path, text), env={}).frames
    assert frame.schedule == (
        ScheduleEntry((23, 0), (), (("display", "OFF"),)),
        ScheduleEntry(
            (7, 5), ("mon", "fri"), (("display", "ON"), ("brightness", "80"), ("pause", "OFF"))
        ),
        ScheduleEntry((6, 30), ("sat", "sun"), (("auto_brightness", "ON"), ("interval", "120"))),
    )
    assert redacted(load_config(write(tmp_path, text), env={}))["frames"]["den"]["schedule"][1] == {
        "at": "07:05",
        "days": ["mon", "fri"],
        "display": "ON",
        "brightness": "80",
        "pause": "OFF",
    }


def test_schedule_errors(tmp_path: Path) -> None:
    # Data as plain yaml.safe_load reads it: an unquoted 23:00 is YAML 1.1's number 1380.
    data = yaml.safe_load(
        MINIMAL
        + """\
    schedule:
      - {at: 23:00, display: "OFF"}
      - {at: "12:60", interval: 4, auto_brightness: dim, snooze: true}
      - {at: "08:00", days: [mon, 3], brightness: true}
"""
    )
    with pytest.raises(ConfigError) as info:
        parse_config(data, {}, tmp_path)
    assert info.value.errors == [
        'frames.den.schedule[0].at: expected "HH:MM" in quotes (YAML reads an unquoted time as '
        "a number), got 1380",
        "frames.den.schedule[1].snooze: unknown key, expected one of "
        "at|days|display|brightness|auto_brightness|pause|interval, got 'snooze'",
        "frames.den.schedule[1].at: expected a time \"HH:MM\" from 00:00 to 23:59, got '12:60'",
        "frames.den.schedule[1].interval: expected an integer from 5 to 86400, got 4",
        "frames.den.schedule[1].auto_brightness: expected ON or OFF, got 'dim'",
        "frames.den.schedule[2].days: unknown day 3, expected days from "
        "mon|tue|wed|thu|fri|sat|sun, got ['mon', 3]",
        "frames.den.schedule[2].brightness: expected an integer from 0 to 100, got True",
    ]


def test_schedule_level_in_unicode_digits_is_a_config_error(tmp_path: Path) -> None:
    # "²" passes str.isdigit but int() refuses it: an error naming the key, not a crash.
    data = yaml.safe_load(MINIMAL + '    schedule: [{at: "08:00", brightness: "²"}]\n')
    with pytest.raises(ConfigError) as info:
        parse_config(data, {}, tmp_path)
    assert info.value.errors == [
        "frames.den.schedule[0].brightness: expected an integer from 0 to 100, got '²'"
    ]


# --- robustness -------------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(["${UNSET}", "${SET}", "23:00", "ON", ".", "http://h", "kitchen", "tag"]),
)
_keys = st.sampled_from(
    [
        "immich",
        "mqtt",
        "renderer",
        "bridge",
        "frames",
        "den",
        "sources",
        "schedule",
        "image",
        "url",
        "api_key",
        "port",
        "poll_interval",
        "full_scan_interval",
        "folder",
        "favorites",
        "album",
        "at",
        "days",
        "display",
        "brightness",
        "fit",
        "listen",
        "secret",
        "exclude",
    ]
)
_documents = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_keys | st.integers(0, 3) | st.none() | st.booleans(), inner, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_documents)
def test_any_document_gives_a_config_or_a_config_error(data: object) -> None:
    base = Path(__file__).resolve().parent
    try:
        config = parse_config(data, {"SET": "5"}, base)
    except ConfigError as e:
        assert e.errors and all(": " in line for line in e.errors)
    else:
        assert config.frames


def test_misshapen_secrets_are_not_echoed(tmp_path: Path) -> None:
    key, pw = SECRETS["IMMICH_API_KEY"], SECRETS["MQTT_PASSWORD"]
    text = f"immich:\n  api_key:{key}\nmqtt: [{{password: {pw}}}]\n" + MINIMAL
    assert errors_of(write(tmp_path, text)) == [
        "immich: expected a mapping of keys, got '***'",
        "mqtt: expected a mapping of keys, got '***'",
    ]


def test_long_press_and_guest_days(tmp_path: Path) -> None:
    text = (
        "bridge: {guest_days: 2.5}\n"
        "frames:\n"
        "  den: {sources: [{folder: .}], long_press: hide}\n"
        "  hall: {sources: [{folder: .}], long_press: like, exclude: [{tag: frame-skip}]}\n"
        "  attic: {sources: [{folder: .}], long_press: off}\n"  # YAML reads a bare off as false
        "  cellar: {sources: [{folder: .}]}\n"
    )
    cfg = load_config(write(tmp_path, text), env={})
    den, hall, attic, cellar = cfg.frames
    assert (den.long_press, hall.long_press, attic.long_press) == ("hide", "like", "off")
    assert cellar.long_press == "off" and cfg.bridge.guest_days == 2.5
    # hide adds the exclusion it relies on, once
    assert [(e.kind, e.value) for e in den.exclude] == [("tag", "frame-skip")]
    assert [(e.kind, e.value) for e in hall.exclude] == [("tag", "frame-skip")]
    assert cellar.exclude == () and BridgeConfig().guest_days == 7
    assert redacted(cfg)["frames"]["den"]["long_press"] == "hide"
    bad = "bridge: {guest_days: 0}\nframes:\n  den: {sources: [{folder: .}], long_press: love}\n"
    assert errors_of(write(tmp_path, bad), env={}) == [
        "bridge.guest_days: expected a number greater than 0 and at most 365, got 0",
        "frames.den.long_press: expected one of off|like|hide, got 'love'",
    ]

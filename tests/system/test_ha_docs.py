"""docs/deploy.md's Home Assistant section holds: its YAML parses, the entity ids it uses are
the ones Home Assistant makes from the discovery payload, its topics are the protocol's, and the
Home Assistant password has one name everywhere."""

from __future__ import annotations

import re

import yaml

from bridge import discovery
from common import topics
from tests.kit import ROOT

DEPLOY = (ROOT / "docs" / "deploy.md").read_text()
SECTION = DEPLOY[DEPLOY.index("## Home Assistant\n") : DEPLOY.index("## Who may do what\n")]
BLOCKS = re.findall(r"```yaml\n(.*?)```", SECTION, re.S)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def test_the_examples_are_yaml() -> None:
    assert len(BLOCKS) >= 4  # dashboard, touch, night, show this photo
    for block in BLOCKS:
        assert yaml.safe_load(block)


def test_entity_ids_are_the_ones_home_assistant_makes() -> None:
    # Home Assistant names an entity `<platform>.<device name>_<entity name>`, slugified.
    doc = discovery.device_config("kitchen", "titanoframe", "1")
    device = _slug(doc["dev"]["name"])
    made = {f"{c['p']}.{device}_{_slug(c['name'])}" for c in doc["cmps"].values() if "name" in c}
    used = set(re.findall(r"\b[a-z_]+\.titanoframe_kitchen_[a-z_]+", SECTION))
    assert used and used <= made, used - made


def test_topics_are_the_protocols() -> None:
    used = set(re.findall(r"titanoframe/kitchen/[a-z_/]+", "\n".join(BLOCKS)))
    assert used
    for topic in used:
        cmd = topics.parse_cmd("titanoframe", topic)
        assert (cmd is not None and cmd[1] in topics.COMMANDS) or topic in (
            topics.event("titanoframe", "kitchen"),
            topics.state("titanoframe", "kitchen"),
        ), topic


def test_the_home_assistant_password_has_one_name() -> None:
    texts = [DEPLOY, (ROOT / "docs" / "protocol.md").read_text(), (ROOT / "README.md").read_text()]
    assert not any("HA_MQTT_PASSWORD" in t for t in texts)
    assert "MQTT_HA_PASSWORD=" in (ROOT / ".env.example").read_text()
    assert "${MQTT_HA_PASSWORD:-}" in (ROOT / "config.example.yaml").read_text()
    assert "$MQTT_HA_PASSWORD" in (ROOT / "docs" / "protocol.md").read_text()

"""`make demo` on this machine: pictures on the simulated screen within 60 s, and a printed
`mosquitto_pub` line changes the frame's state."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kit import ROOT

NEEDS = ("mosquitto", "mosquitto_pub", "mosquitto_sub")


@pytest.mark.slow
@pytest.mark.skipif(any(shutil.which(b) is None for b in NEEDS), reason="needs mosquitto")
def test_demo_shows_pictures_and_answers_commands(tmp_path: Path) -> None:
    env = dict(os.environ, DEMO_SECONDS="75", DEMO_DIR=str(tmp_path / "demo"))
    demo = subprocess.Popen(
        [sys.executable, "-m", "tools.demo"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        lines = []
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                break
        text = "".join(lines)
        commands = re.findall(r"^\s+(mosquitto_pub .*)$", text, re.M)
        assert len(commands) == 3, text
        screen = tmp_path / "demo" / "screen.png"
        deadline = time.monotonic() + 60
        while not screen.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert screen.exists(), text
        sub_line = re.search(r"watch:\s+(mosquitto_sub .*)$", text, re.M)
        assert sub_line
        sub = sub_line.group(1).replace("'titanoframe/demo/#'", "titanoframe/demo/state")
        brightness = next(c for c in commands if "/cmd/brightness" in c)
        subprocess.run(brightness, shell=True, check=True, timeout=10)
        state: dict[str, Any] = {}
        deadline = time.monotonic() + 15
        while state.get("brightness") != 30 and time.monotonic() < deadline:
            words = subprocess.run(
                [*sub.split(), "-C", "1", "-W", "3"], capture_output=True, text=True, timeout=10
            ).stdout.split(" ", 1)
            state = json.loads(words[1]) if len(words) == 2 else {}
        assert state.get("brightness") == 30
        assert state.get("picture")
    finally:
        demo.terminate()
        out, _ = demo.communicate(timeout=60)
    assert "demo stopped." in out
    assert demo.returncode == 0

"""`make demo`: the whole of titanoframe on this machine, on loopback, with the simulated frame.

Starts Mosquitto (from broker_config/), the renderer, the bridge and the frame simulator. Photos
come from the real Immich when `.env` has IMMICH_URL and IMMICH_API_KEY (the frame shows your
favourites), else from sample photos generated into the demo folder. Prints where the screen
PNG is and commands to try. Ctrl-C stops everything; DEMO_SECONDS=N stops after N seconds.
Everything lives in build/demo/ (DEMO_DIR to change). Does process, file and network I/O.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from tools import broker, photos

ROOT = Path(__file__).resolve().parents[1]
FRAME = "demo"


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (no shell expansion)."""
    out: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                out[key.strip()] = value.strip().strip("'\"")
    return out


def config_yaml(mqtt_port: int, http_port: int, users: dict[str, str], immich: bool) -> str:
    source = "      - favorites: true\n" if immich else "      - folder: ./photos\n"
    head = "immich:\n  url: ${IMMICH_URL}\n  api_key: ${IMMICH_API_KEY}\n" if immich else ""
    return head + (
        f"mqtt:\n  host: 127.0.0.1\n  port: {mqtt_port}\n  username: bridge\n"
        f"  password: {users['bridge']}\n  homeassistant_password: {users['homeassistant']}\n"
        f"renderer:\n  listen: 127.0.0.1:{http_port}\n  public_url: http://127.0.0.1:{http_port}\n"
        f"  cache_dir: ./cache\n  url_key: {secrets.token_hex(16)}\n"
        f"  mqtt_password: {users['renderer']}\n"
        "bridge:\n  poll_interval: 10\n  metrics_listen: ''\n"
        f"frames:\n  {FRAME}:\n    secret: {users[FRAME]}\n    sources:\n{source}"
        "    image: {format: bmp8, fit: blur}\n"
    )


def _spawn(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as f:
        return subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    # one at a time, frame first: each still sees the others up while it shuts down
    for p in reversed(procs):
        if p.poll() is None:
            p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _tips(users: dict[str, str], port: int, screen: Path, work: Path) -> str:
    pub = f"mosquitto_pub -h 127.0.0.1 -p {port} -u homeassistant -P {users['homeassistant']}"
    t = f"titanoframe/{FRAME}"
    return (
        f"\ntitanoframe demo is running (logs in {work}).\n"
        f"  screen:  {screen}  (rewritten after every draw)\n"
        f"  touch / light: append 'touch 400' or 'light 5000' to {work / 'control.txt'}\n"
        "try:\n"
        f"  {pub} -t {t}/cmd/next -m PRESS\n"
        f"  {pub} -t {t}/cmd/brightness -m 30\n"
        f"  {pub} -t {t}/cmd/pause -m ON\n"
        f"watch:  mosquitto_sub -h 127.0.0.1 -p {port} -u homeassistant "
        f"-P {users['homeassistant']} -t '{t}/#' -v\n"
        "Ctrl-C stops the demo.\n"
    )


def main() -> int:
    work = Path(os.environ.get("DEMO_DIR") or ROOT / "build" / "demo").resolve()
    seconds = float(os.environ["DEMO_SECONDS"]) if os.environ.get("DEMO_SECONDS") else None
    env = dict(os.environ)
    dotenv = read_env(ROOT / ".env")
    immich = bool(dotenv.get("IMMICH_URL") and dotenv.get("IMMICH_API_KEY"))
    if immich:
        env.update(IMMICH_URL=dotenv["IMMICH_URL"], IMMICH_API_KEY=dotenv["IMMICH_API_KEY"])
    work.mkdir(parents=True, exist_ok=True)
    if not immich:
        photos.generate(work / "photos")
    users = {n: secrets.token_hex(8) for n in ("bridge", "renderer", "homeassistant", FRAME)}
    procs: list[subprocess.Popen[bytes]] = []
    stopping = [False]
    signal.signal(signal.SIGTERM, lambda *_: stopping.__setitem__(0, True))
    try:
        port, mosq = broker.start(work / "broker", users)
        procs.append(mosq)
        http_port = broker.free_port()
        config = work / "config.yaml"
        config.write_text(config_yaml(port, http_port, users, immich))
        py = sys.executable
        procs.append(
            _spawn([py, "-m", "renderer", "--config", str(config)], work / "renderer.log", env)
        )
        broker.wait_port(http_port, procs[-1], "renderer")
        procs.append(
            _spawn([py, "-m", "bridge", "--config", str(config), "run"], work / "bridge.log", env)
        )
        settings = work / "settings.toml"
        settings.write_text(
            f'FRAME_ID = "{FRAME}"\nFRAME_SECRET = "{users[FRAME]}"\n'
            f'MQTT_HOST = "127.0.0.1"\nMQTT_PORT = "{port}"\n'
        )
        screen = work / "screen.png"
        screen.unlink(missing_ok=True)
        (work / "control.txt").touch()
        control = str(work / "control.txt")
        sim = [py, "-m", "titano_app.sim", "--settings", str(settings), "--card",
               str(work / "card"), "--screen", str(screen), "--control", control]  # fmt: skip
        procs.append(_spawn(sim, work / "frame.log", env))
        print(_tips(users, port, screen, work), flush=True)
        end = None if seconds is None else time.monotonic() + seconds
        while not stopping[0] and (end is None or time.monotonic() < end):
            for p in procs:
                if p.poll() is not None:
                    name = " ".join(str(a) for a in p.args[:3])  # type: ignore[index]
                    print(f"demo: {name} stopped ({p.returncode}); logs in {work}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except RuntimeError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    finally:
        _stop(procs)
        print("demo stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m renderer --config FILE` (or `titanoframe-renderer`): run the renderer HTTP service
until SIGTERM. Reads the config file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from common.config import ConfigError, format_errors, load_config, redacted_line, secret_values
from common.logsetup import LEVELS, REDACTED_BY_KEY, setup_logging
from renderer.service import StartError, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m renderer", description=__doc__)
    parser.add_argument("--config", required=True, help="the titanoframe YAML config file")
    parser.add_argument(
        "--log-level",
        default=os.environ.get("TITANOFRAME_LOG_LEVEL", "INFO").upper(),
        choices=LEVELS,
        help="default: $TITANOFRAME_LOG_LEVEL or INFO",
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(format_errors(args.config, exc.errors), end="", file=sys.stderr)
        return 2
    setup_logging(args.log_level, secret_values(config))
    line = redacted_line(config)
    logging.getLogger("renderer").info("effective config: %s", line, extra=REDACTED_BY_KEY)
    try:
        run(config)
    except StartError as exc:
        print(f"renderer: {exc}", file=sys.stderr)
        return 1
    return 0

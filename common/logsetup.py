"""Logging for titanoframe's daemons: one line per record (`time level logger message`) on
stderr, and a filter that masks secret values wherever they would appear. Writes to stderr only.

What is known to be a secret by its key (the effective config, redacted with
`common.config.redacted_line`) is logged with `extra=REDACTED_BY_KEY` and left alone: masking
values there would only mangle it, as a short secret such as `k` would turn every `k` of the
line into `***`.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MASK = "***"
# A record whose secrets were already replaced by their keys; `log.info(..., extra=...)`.
REDACTED_BY_KEY = {"redacted_by_key": True}
# Secrets at least this long are masked wherever they appear; a shorter one only as a whole
# word, so a password such as `k` or `frame` does not eat ordinary text.
WHOLE_WORD_BELOW = 8


def _pattern(secret: str) -> str:
    text = re.escape(secret)
    return text if len(secret) >= WHOLE_WORD_BELOW else rf"(?<![0-9A-Za-z]){text}(?![0-9A-Za-z])"


class SecretFilter(logging.Filter):
    """Replaces every secret value in a record's final message (and traceback) with "***".

    Attach it to handlers: a logger's own filters do not see records from its children.
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._re = re.compile("|".join(map(_pattern, self.secrets))) if self.secrets else None

    def mask(self, text: str) -> str:
        return text if self._re is None else self._re.sub(MASK, text)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets or getattr(record, "redacted_by_key", False):
            return True
        record.msg = self.mask(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.mask(record.exc_text)
        if record.stack_info:
            record.stack_info = self.mask(record.stack_info)
        return True


class OneLineFormatter(logging.Formatter):
    """`2025-11-23T07:49:00Z INFO bridge.sync message`; newlines (tracebacks) become `\\n` so
    every record stays one line for grep and journald."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%SZ")
        self.converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).replace("\r", "").replace("\n", "\\n")


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler `setup_logging` installed, so calling it again replaces it."""


def setup_logging(level: str, secrets: Iterable[str] = ()) -> None:
    """Log records at `level` and above to stderr, one line each, masking `secrets`."""
    name = level.upper()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}, expected one of {'|'.join(LEVELS)}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = _Handler(sys.stderr)
    handler.setFormatter(OneLineFormatter())
    handler.addFilter(SecretFilter(secrets))
    root.addHandler(handler)
    root.setLevel(name)

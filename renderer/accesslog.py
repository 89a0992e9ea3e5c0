"""The renderer's access log: one line a request, without the query string. Formatting only.

The query string is left out on purpose: it may carry a frame secret (`?token=`) or a URL
signature. Health checks and metrics scrapes go to DEBUG so a Prometheus or Docker poll every
few seconds does not bury the requests frames and people make.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

QUIET_PATHS = ("/healthz", "/metrics")


class AccessLogger(AbstractAccessLogger):
    """`<client> <method> <path> <status> <bytes> <ms>`; aiohttp calls `log` after each response."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        level = logging.DEBUG if request.path in QUIET_PATHS else logging.INFO
        self.logger.log(
            level,
            "%s %s %s %d %d %.1fms",
            request.remote or "-",
            request.method,
            request.path,
            response.status,
            # sendfile bodies bypass body_length; the declared length is what was sent
            response.content_length or response.body_length,
            time * 1000,
        )

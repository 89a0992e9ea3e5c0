"""The one failure type of a picture request, shared by the fetch, the render and the routes.

Pure. A `PictureError` carries the HTTP status the renderer answers with, a short code and a
reason safe to show a client. Worker processes never raise across the process boundary: they
return `PictureError.as_tuple()` and the serving process rebuilds the error from it.
"""

from __future__ import annotations

# (status, code, reason, retryable): a failure as plain data, for the pipe from a worker.
FailureTuple = tuple[int, str, str, bool]

# Codes of failures in rendering or storing a picture; every other code is about its source.
RENDER_CODES = frozenset({"bad_image", "render_crashed", "cache_unwritable"})
# Seconds a client is told to wait before asking again after a 503 (the cause may pass soon).
RETRY_AFTER = 5


class PictureError(Exception):
    """A picture that cannot be served now; `status`/`code`/`reason` become the JSON answer.

    `retryable`: the cause may pass (Immich down or answering 5xx), so a pre-render tries again.
    """

    def __init__(self, status: int, code: str, reason: str, retryable: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason
        self.retryable = retryable

    @property
    def headers(self) -> dict[str, str]:
        """Extra response headers: a 503 says when to ask again."""
        return {"Retry-After": str(RETRY_AFTER)} if self.status == 503 else {}

    def as_tuple(self) -> FailureTuple:
        return (self.status, self.code, self.reason, self.retryable)

    @property
    def metric_kind(self) -> str:
        """The `kind` label of `upstream_errors_total` for a source failure."""
        return "timeout" if self.code == "upstream_timeout" else self.code

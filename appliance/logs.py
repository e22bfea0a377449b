"""Logging set-up and the request's correlation ID, which every log line carries.

The correlation ID lives in a context variable set by the request middleware, so log lines from
the route, the loader and worker threads started with `asyncio.to_thread` all name their request.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

correlation_id: ContextVar[str] = ContextVar("correlation_id", default="-")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s cid=%(correlation_id)s %(message)s"


class CorrelationIdFilter(logging.Filter):
    """Stamps each record with the correlation ID of the request that produced it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        return True


def configure_logging(level: str) -> None:
    """Route every logger (ours, uvicorn's) to stderr in one format at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(CorrelationIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers[:] = []
        uv.propagate = True
    # httpx and httpcore log every request at INFO with its full URL, which for a model download may
    # carry a signed query string: keep them to warnings unless the server runs at DEBUG.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)

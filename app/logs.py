"""JSON logs with a request id that follows the work from the request into its jobs."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "barid_request_id", default=None
)


def current_request_id() -> str | None:
    """The id of the request (or of the request that caused the running job), if any."""
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token:
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = current_request_id()
        if rid:
            out["request_id"] = rid
        for key, value in record.__dict__.items():
            if key.startswith("barid_"):
                out[key.removeprefix("barid_")] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    """Send every log record to stderr as one JSON object a line."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers[:] = [handler]
    root.setLevel(level)


_REQUEST_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
REQUEST_ID_MAX = 64


def clean_request_id(raw: str | None) -> str | None:
    """The usable part of a client-sent X-Request-ID, or None if nothing usable is left.

    Only [A-Za-z0-9._-] survive, at most 64 of them: the id goes into log lines and
    response headers, where newlines or quotes from a client would forge entries.
    """
    if not raw:
        return None
    cleaned = _REQUEST_ID_UNSAFE.sub("", raw)[:REQUEST_ID_MAX]
    return cleaned or None


def new_request_id() -> str:
    return uuid.uuid4().hex

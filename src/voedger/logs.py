"""The server's log lines: plain text by default, JSON lines on request (``--log-format json``),
and in both, credentials masked.

A line never carries a token, password or secret: the access log takes none of a request's
headers or body and drops its query string, and every message goes through ``redact``, which
masks bearer tokens, JWTs and ``password``/``token``/``secret`` values that a message (an error's
text, say) might hold.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Literal

import orjson

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"

_SECRETS = (
    re.compile(r"(?i)(bearer\s+)[^\s\"',;]+"),
    re.compile(
        r"(?i)([\"']?\b(?:[a-z_]*password|[a-z_]*token|[a-z_]*secret|api_?key)[\"']?\s*[:=]\s*[\"']?)[^\"',\s}&]+"
    ),
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),  # a JWT anywhere
)


def redact(text: str) -> str:
    """``text`` with bearer tokens, JWTs and the values of password, token and secret fields masked."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + MASK, text)
    return text


class RedactingFilter(logging.Filter):
    """Masks credentials in every record's message (arguments merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the
    fields a record carries in ``extra={"fields": {...}}``, and ``error`` for an exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["error"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


def configure(fmt: Literal["text", "json"] = "text", level: int = logging.INFO) -> None:
    """The root logger's one handler (stderr) in ``fmt``, masking credentials."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)

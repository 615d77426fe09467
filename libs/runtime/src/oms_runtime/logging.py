"""Structured JSON logs that carry the correlation id (the order id) everywhere."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

_context: ContextVar[Mapping[str, Any]] = ContextVar(
    "oms_log_context", default=MappingProxyType({})
)

# Attributes every LogRecord has; anything else was passed with `extra=`
# (uvicorn's `color_message` duplicates the message with terminal colours).
_STANDARD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()
    | {"message", "asctime", "color_message"}
)


class _LogContext:
    """The block of `log_context`. A class, not a generator: it is entered three times
    for every message handled and twice per request, and entering and leaving a
    generator-based context manager costs ~1 µs against ~0.2 µs for a class."""

    __slots__ = ("_fields", "_token")

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields
        self._token: Token[Mapping[str, Any]] | None = None

    def __enter__(self) -> None:
        self._token = _context.set({**_context.get(), **self._fields})

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _context.reset(self._token)
            self._token = None


def log_context(**fields: Any) -> AbstractContextManager[None]:
    """Attach fields (correlation_id, message_id, ...) to every log line inside."""
    return _LogContext({k: v for k, v in fields.items() if v is not None})


def bind_log_context(**fields: Any) -> None:
    """Add fields to the current context (e.g. once a request learns its order id)."""
    _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = dict(_context.get())
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_"):
            fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
            **_record_fields(record),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    """For humans watching `make run`: one line, key=value fields appended."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in _record_fields(record).items())
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        if fields:
            line = f"{line}  [{fields}]"
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # aio-pika and aiormq are chatty at INFO during reconnects; warnings still show.
    logging.getLogger("aio_pika").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("aiormq").setLevel(max(logging.WARNING, root.level))

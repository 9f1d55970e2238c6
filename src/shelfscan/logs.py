"""structlog set-up: JSON lines for machines, readable lines for people."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from shelfscan.db.connect import redact_url


class _StderrLogger:
    """Writes to whatever `sys.stderr` is now, so a live progress bar can wrap it."""

    def __init__(self, name: str = "shelfscan") -> None:
        self.name = name

    def msg(self, message: str) -> None:
        stream: TextIO = sys.stderr
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warning = warn = error = critical = exception = fatal = msg


def _logger_factory(*args: Any) -> _StderrLogger:
    return _StderrLogger(str(args[0]) if args else "shelfscan")


def add_logger_name(logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event.setdefault("logger", getattr(logger, "name", "shelfscan"))
    return event


def redact_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A database URL's password never reaches a log line."""
    for key, value in event.items():
        if isinstance(value, str) and "://" in value:
            event[key] = redact_url(value)
    return event


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    # Libraries that log through the standard library (pypdf's warnings about sloppy
    # files) must not flood the log: their per-file problems are reported by the scan.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.dict_tracebacks
            if use_json
            else structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=False,
    )

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


def add_logger_name(
    logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event.setdefault("logger", getattr(logger, "name", "shelfscan"))
    return event


def redact_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A database URL's password never reaches a log line, however deep it sits."""
    for key, value in event.items():
        event[key] = _redact(value)
    return event


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_url(value) if "://" in value else value
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


class StdlibToStructlog(logging.Handler):
    """Hands the standard library's log records (asyncpg's, watchfiles', ...) to structlog.

    Without it they bypassed the JSON renderer and the secret redaction: during a database
    restart a quarter of the daemon's output was asyncpg's plain-text tracebacks.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            log = structlog.get_logger(record.name)
            fields: dict[str, Any] = {"logger": record.name}
            if record.exc_info:
                fields["exc_info"] = record.exc_info
            log.log(record.levelno, record.getMessage(), **fields)
        except Exception:
            self.handleError(record)


def _route_stdlib_logging(level: int) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, StdlibToStructlog):
            root.removeHandler(handler)
    root.addHandler(StdlibToStructlog(level))
    root.setLevel(level)


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
    # pgserver narrates every initdb/pg_ctl step (a dozen lines a start) at info; its
    # warnings and errors still come through.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    _route_stdlib_logging(max(getattr(logging, level.upper()), logging.INFO))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Exceptions become fields (type, message, frames) without frame locals, which could
            # hold a secret; redaction runs after, so exception messages are covered too.
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
            if use_json
            else structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=_logger_factory,
        cache_logger_on_first_use=False,
    )

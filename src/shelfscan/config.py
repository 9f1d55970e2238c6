"""Settings read once from the environment, then passed down explicitly."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import platformdirs

from shelfscan.errors import ShelfscanError

ExecutorKind = Literal["process", "thread"]
LogFormat = Literal["auto", "json", "console"]


class ConfigError(ShelfscanError, ValueError):
    """A setting has a value shelfscan cannot use; the message names it."""


_PASSWORD_IN_URL = re.compile(r"(://[^:/@]*:)([^@]*)(@)")


def redact_url(url: str) -> str:
    """Hide the password of a URL before it reaches a log line or an error."""
    return _PASSWORD_IN_URL.sub(r"\1***\3", url)


def _database_url(raw: str | None) -> str | None:
    if not raw:
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"DATABASE_URL must be a postgresql:// URL, not {redact_url(raw)!r}")
    if "," not in parts.netloc:  # several hosts: asyncpg checks each
        try:
            _ = parts.port  # raises on a port that is not a number
        except ValueError:
            raise ConfigError(f"DATABASE_URL has a bad port: {redact_url(raw)!r}") from None
    return raw


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None
    data_dir: Path
    covers_dir: Path
    workers: int
    parse_executor: ExecutorKind
    parse_processes: int
    chunk_size: int
    log_format: LogFormat
    log_level: str
    progress_interval_s: float
    lease_s: float
    poll_interval_s: float
    concurrency: int
    listen: bool
    shutdown_grace_s: float
    job_retention_days: float
    split_files: int
    part_files: int
    watch_mode: str
    watch_debounce_ms: int
    watch_poll_interval_s: float
    full_scan_hours: float
    purge_after_days: float
    settle_s: float
    ignore: tuple[str, ...]  # name globs the walk skips; "default" is discovery.DEFAULT_IGNORE
    covers_compact_hours: float = 24.0  # the daemon's covers compaction; 0: never
    http: str | None = None  # `serve --http` when the flag is not given, e.g. ":8080"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(
            env.get("SHELFSCAN_DATA_DIR")
            or platformdirs.user_data_dir("shelfscan", appauthor=False)
        ).expanduser()
        covers = env.get("SHELFSCAN_COVERS_DIR")
        executor = env.get("SHELFSCAN_PARSE_EXECUTOR", "process")
        if executor not in ("process", "thread"):
            raise ConfigError(
                f"SHELFSCAN_PARSE_EXECUTOR must be 'process' or 'thread', not {executor!r}"
            )
        log_format = env.get("SHELFSCAN_LOG_FORMAT", "auto")
        if log_format not in ("auto", "json", "console"):
            raise ConfigError(
                f"SHELFSCAN_LOG_FORMAT must be auto, json or console, not {log_format!r}"
            )
        level = env.get("SHELFSCAN_LOG_LEVEL", "info").lower()
        if level not in ("debug", "info", "warning", "error"):
            raise ConfigError(
                f"SHELFSCAN_LOG_LEVEL must be debug, info, warning or error, not {level!r}"
            )
        return cls(
            database_url=_database_url(env.get("DATABASE_URL")),
            data_dir=data_dir,
            covers_dir=Path(covers).expanduser() if covers else data_dir / "covers",
            workers=_int(env, "SHELFSCAN_WORKERS", 4, 1, 64),
            parse_executor=executor,  # type: ignore[arg-type]
            parse_processes=_int(env, "SHELFSCAN_PARSE_PROCESSES", os.cpu_count() or 2, 1, 64),
            chunk_size=_int(env, "SHELFSCAN_CHUNK_SIZE", 200, 1, 5000),
            log_format=log_format,  # type: ignore[arg-type]
            log_level=level,
            progress_interval_s=_float(env, "SHELFSCAN_PROGRESS_INTERVAL", 1.0, 0.05, 2.0),
            lease_s=_float(env, "SHELFSCAN_LEASE_SECONDS", 30.0, 1.0, 3600.0),
            poll_interval_s=_float(env, "SHELFSCAN_POLL_INTERVAL", 5.0, 0.1, 600.0),
            concurrency=_int(env, "SHELFSCAN_CONCURRENCY", 2, 1, 64),
            listen=_bool(env, "SHELFSCAN_LISTEN", True),
            shutdown_grace_s=_float(env, "SHELFSCAN_SHUTDOWN_GRACE", 20.0, 0.0, 3600.0),
            job_retention_days=_float(env, "SHELFSCAN_JOB_RETENTION_DAYS", 7.0, 0.0, 3650.0),
            split_files=_int(env, "SHELFSCAN_SPLIT_FILES", 5000, 1, 10_000_000),
            part_files=_int(env, "SHELFSCAN_PART_FILES", 2000, 1, 1_000_000),
            watch_mode=_choice(env, "SHELFSCAN_WATCH_MODE", "auto", ("auto", "events", "polling")),
            watch_debounce_ms=_int(env, "SHELFSCAN_WATCH_DEBOUNCE_MS", 1600, 50, 600_000),
            watch_poll_interval_s=_float(env, "SHELFSCAN_WATCH_POLL_INTERVAL", 30.0, 0.1, 86400.0),
            full_scan_hours=_float(env, "SHELFSCAN_FULL_SCAN_HOURS", 24.0, 0.0, 8760.0),
            purge_after_days=_float(env, "SHELFSCAN_PURGE_AFTER_DAYS", 0.0, 0.0, 36500.0),
            settle_s=_float(env, "SHELFSCAN_SETTLE_SECONDS", 2.0, 0.0, 3600.0),
            covers_compact_hours=_float(env, "SHELFSCAN_COVERS_COMPACT_HOURS", 24.0, 0.0, 8760.0),
            ignore=_patterns(env, "SHELFSCAN_IGNORE", ("default",)),
            http=_listen(env, "SHELFSCAN_HTTP"),
        )


def _listen(env: Mapping[str, str], name: str) -> str | None:
    raw = env.get(name) or None
    if raw is not None:
        _, _, port = raw.rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"{name} must be HOST:PORT or :PORT, not {raw!r}")
    return raw


_Number = TypeVar("_Number", int, float)


def _bounded(
    env: Mapping[str, str],
    name: str,
    default: _Number,
    lo: _Number,
    hi: _Number,
    parse: Callable[[str], _Number],
    kind: str,
) -> _Number:
    """`name` parsed by `parse` and kept within [lo, hi]; unset or empty gives `default`.

    One rule for every numeric setting, so whole numbers and decimals fail alike
    with a one-line ConfigError naming the variable.
    """
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {kind}, not {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo} and {hi}, not {value}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    return _bounded(env, name, default, lo, hi, int, "a whole number")


def _float(env: Mapping[str, str], name: str, default: float, lo: float, hi: float) -> float:
    return _bounded(env, name, default, lo, hi, float, "a number")


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = env.get(name) or default
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {raw!r}")
    return raw


def _patterns(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A comma-separated list of name globs; a "/" cannot be in a name, so it is refused."""
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    patterns = tuple(p.strip() for p in raw.split(",") if p.strip())
    for pattern in patterns:
        if "/" in pattern:
            raise ConfigError(f"{name} holds folder or file names (globs), not paths: {pattern!r}")
    return patterns

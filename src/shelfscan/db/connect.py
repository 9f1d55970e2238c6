"""Where the database is, and a pool to it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg

from shelfscan.config import Settings, redact_url
from shelfscan.db.embedded import embedded_postgres
from shelfscan.errors import ShelfscanError

__all__ = ["DatabaseUnavailable", "connect", "database_url", "open_pool", "redact_url"]


@contextlib.contextmanager
def database_url(
    settings: Settings, *, while_starting: Callable[[], object] | None = None
) -> Iterator[str]:
    """DATABASE_URL if set, else an embedded server kept alive for the block.

    `while_starting` runs before the URL is handed out: while an embedded server boots
    if this call started one, else at once."""
    if settings.database_url:
        if while_starting is not None:
            while_starting()
        yield settings.database_url
        return
    with embedded_postgres(settings.data_dir, while_starting=while_starting) as url:
        yield url


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Binary format, so jsonb columns can also be filled by COPY (binary COPY has no
    # text-codec fallback); on the wire jsonb is a version byte, then the JSON text.
    await conn.set_type_codec(
        "jsonb", encoder=_jsonb_encode, decoder=_jsonb_decode, schema="pg_catalog", format="binary"
    )


_JSONB_VERSION = b"\x01"


def _jsonb_encode(value: object) -> bytes:
    return _JSONB_VERSION + json.dumps(value, default=str).encode()


def _jsonb_decode(data: bytes) -> object:
    if data[:1] != _JSONB_VERSION:
        raise ValueError(f"unknown jsonb binary version {data[:1]!r}")
    return json.loads(data[1:])


def _server_settings(application_name: str) -> dict[str, str]:
    # pg_stat_activity then tells which shelfscan process (and which part of it) holds a
    # connection; PostgreSQL keeps the first 63 bytes.
    return {"application_name": application_name[:63]}


@contextlib.asynccontextmanager
async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 8, application_name: str = "shelfscan"
) -> AsyncIterator[asyncpg.Pool]:
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            command_timeout=300,
            server_settings=_server_settings(application_name),
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        reason = redact_url(str(exc))
        raise DatabaseUnavailable(f"cannot connect to {redact_url(url)}: {reason}") from None
    try:
        yield pool
    finally:
        await pool.close()


async def connect(
    url: str, *, application_name: str = "shelfscan", typed: bool = True
) -> asyncpg.Connection:
    """A connection outside the pool (migrations' advisory lock, LISTEN).

    `typed=False` skips the jsonb codec set-up (a catalogue round trip) for callers
    that never read jsonb."""
    try:
        conn: asyncpg.Connection = await asyncpg.connect(
            url, server_settings=_server_settings(application_name)
        )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ValueError) as exc:
        reason = redact_url(str(exc))
        raise DatabaseUnavailable(f"cannot connect to {redact_url(url)}: {reason}") from None
    if typed:
        await _init_connection(conn)
    return conn


class DatabaseUnavailable(ShelfscanError):
    """The database cannot be reached (one line, the password redacted)."""

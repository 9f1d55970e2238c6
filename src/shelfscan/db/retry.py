"""Which database errors mean "the connection is gone", and retrying past them.

A connection killed under a statement (`pg_terminate_backend`, a server
restart, a crash, a network cut) surfaces from asyncpg as one of several
unrelated classes — some of them `PostgresError`s that look like a bad
statement, one (`InternalClientError`) not even an asyncpg error. Work that is
safe to repeat on a new connection is retried with backoff; what a bad row
causes is not, since repeating it cannot help.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from asyncpg import exceptions as pgexc

from shelfscan.errors import ShelfscanError, one_line

T = TypeVar("T")

# 57P01 terminated by an administrator, 57P02 crash of another backend, 57P03 starting or
# shutting down: the server ended this connection; a new one may well work.
_SERVER_ENDED = (pgexc.AdminShutdownError, pgexc.CrashShutdownError, pgexc.CannotConnectNowError)


def connection_lost(exc: BaseException) -> bool:
    """True when `exc` says the connection (or the server) went away, not that a statement failed."""
    return isinstance(exc, _LOST)


_LOST = (
    asyncpg.PostgresConnectionError,  # includes ConnectionDoesNotExistError
    asyncpg.InterfaceError,  # "connection is closed", "another operation is in progress"
    asyncpg.InternalClientError,  # "cannot switch to state N" after a kill mid-protocol
    OSError,  # refused, reset, unreachable
    TimeoutError,
    *_SERVER_ENDED,
)


class DatabaseLost(ShelfscanError):
    """The database stayed unreachable through every retry."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """How often and how patiently to retry: `attempts` tries, `first_s` doubling up to `max_s`.

    The default rides out a server restart or a storm of killed connections
    (about 15 s in all) and gives up on a real outage soon enough for a CLI
    scan to say so.
    """

    attempts: int = 6
    first_s: float = 0.5
    max_s: float = 5.0

    def delays(self) -> list[float]:
        return [min(self.first_s * 2**i, self.max_s) for i in range(self.attempts - 1)]


async def retry_on_lost_connection(
    operation: Callable[[], Awaitable[T]], what: str, backoff: Backoff
) -> T:
    """Run `operation` (which must take a fresh connection each call) until it stops losing it.

    Errors that are not a lost connection pass through at once. After the last
    attempt, `DatabaseLost` says in one line what could not be done and why.
    """
    delays = backoff.delays()
    for delay in [*delays, None]:
        try:
            return await operation()
        except Exception as exc:
            if not connection_lost(exc):
                raise
            if delay is None:
                raise DatabaseLost(
                    f"{what}: database unreachable after {backoff.attempts} attempts: {one_line(exc)}"
                ) from exc
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

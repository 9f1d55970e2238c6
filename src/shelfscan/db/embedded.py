"""An embedded PostgreSQL for users who have no server: `shelfscan scan ~/Books` just works."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shelfscan.errors import ShelfscanError


class EmbeddedDatabaseError(ShelfscanError, RuntimeError):
    pass


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded server in `data_dir/pg` and yield its URL.

    pgserver shares one postmaster between processes using the same folder and
    stops it when the last one leaves, so a CLI scan and a daemon can coexist.
    """
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - pgserver is a hard dependency
        raise EmbeddedDatabaseError(f"pgserver is not installed: {exc}") from exc
    pgdata = data_dir / "pg"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir / "pg.lock"
    # Two processes initialising one folder at once corrupt it; serialise start-up.
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            server: Any = pgserver.get_server(str(pgdata), cleanup_mode="stop")
        except Exception as exc:
            raise EmbeddedDatabaseError(
                f"could not start embedded PostgreSQL in {pgdata}: {exc}"
            ) from exc
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        yield str(server.get_uri())
    finally:
        with contextlib.suppress(Exception):
            server.cleanup()

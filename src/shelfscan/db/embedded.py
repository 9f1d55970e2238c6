"""An embedded PostgreSQL for users who have no server: `shelfscan scan ~/Books` just works.

pgserver does the first-time `initdb` and keeps the list of processes sharing one
postmaster; its start and stop are slow for a CLI that runs for a fraction of a
second: `pg_ctl -w` polls every 100 ms, pgserver re-checks readiness once a
second, and `pg_ctl -w stop` waits for the shutdown checkpoint. Measured here on a
scan of 60 audio files, start and stop were ~0.35-0.5 s of a ~0.9 s run. So:

- start: `pg_ctl start` without waiting, then poll `postmaster.pid` every few ms
  until the postmaster says "ready";
- stop (the last process to leave): a fast-shutdown signal, waiting only until the
  postmaster has marked itself "stopping"; the next start waits for that one to
  exit (under the same lock) before it starts a new one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shelfscan.errors import ShelfscanError

READY_POLL_S = 0.005
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0


class EmbeddedDatabaseError(ShelfscanError, RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Postmaster:
    """What `postmaster.pid` says: the server's pid and its state."""

    pid: int
    status: str  # starting | ready | stopping | standby

    @classmethod
    def read(cls, pgdata: Path) -> Postmaster | None:
        try:
            lines = (pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        return cls(pid, lines[7].strip() if len(lines) > 7 else "")

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def _wait(pgdata: Path, done: Any, timeout_s: float, what: str) -> Postmaster | None:
    """Poll postmaster.pid until `done(info)` holds; every few ms, not every 100."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = Postmaster.read(pgdata)
        if done(info):
            return info
        if time.monotonic() > deadline:
            log = pgdata / "log"
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            raise EmbeddedDatabaseError(f"embedded PostgreSQL in {pgdata}: {what}; log: {tail}")
        time.sleep(READY_POLL_S)


def _start_quickly(pgdata: Path) -> None:
    """Start an initialised, stopped server without pg_ctl's 100 ms polling."""
    from pgserver import utils  # the same socket folder and server user pgserver would pick
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.postgres_server import PostgresServer

    running = Postmaster.read(pgdata)
    if running is not None and running.alive():
        if running.status == "ready":
            return
        # Stopping (a previous process's fast shutdown) or starting: let it finish.
        _wait(
            pgdata,
            lambda i: i is None or not i.alive() or i.status == "ready",
            STOP_TIMEOUT_S,
            "the previous server did not stop",
        )
        again = Postmaster.read(pgdata)
        if again is not None and again.alive():
            return
    user = None
    if os.geteuid() == 0:
        user = "pgserver"
        utils.ensure_user_exists(user)
        utils.ensure_prefix_permissions(pgdata)
    socket_dir = utils.find_suitable_socket_dir(pgdata, PostgresServer.runtime_path)
    if user is not None and socket_dir != pgdata:
        utils.ensure_prefix_permissions(socket_dir)
        socket_dir.chmod(0o777)
    subprocess.run(
        [
            str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-W",
            "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(pgdata / "log"), "start",
        ],
        check=True, user=user, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=10,
    )  # fmt: skip
    _wait(
        pgdata,
        lambda i: i is not None and i.status == "ready",
        START_TIMEOUT_S,
        "the server did not become ready",
    )


def _leave(server: Any, pgdata: Path) -> None:
    """Drop this process from pgserver's list; the last one out asks for a fast shutdown."""
    lock = getattr(server, "_lock", None)
    handles = getattr(server, "global_process_id_list", None)
    if lock is None or handles is None:  # a pgserver we do not know: its own (slow) stop
        server.cleanup()
        return
    import atexit

    atexit.unregister(server._cleanup)
    with lock:
        # Processes that died without leaving (kill -9) would keep the server up for good.
        others = [p for p in handles.get() if p != os.getpid() and _pid_alive(p)]
        handles.put(others)
        type(server)._instances.pop(pgdata, None)
        if others:
            return
        info = Postmaster.read(pgdata)
        if info is None or not info.alive():
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(info.pid, signal.SIGINT)  # fast shutdown
            # Until the pid file says "stopping", a new process could still connect to it.
            with contextlib.suppress(EmbeddedDatabaseError):
                _wait(pgdata, lambda i: i is None or i.status != "ready", 5.0, "no shutdown")


def _pid_alive(pid: int) -> bool:
    return Postmaster(pid, "").alive()


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or join) the embedded server in `data_dir/pg` and yield its URL.

    pgserver shares one postmaster between processes using the same folder and
    the last one to leave stops it, so a CLI scan and a daemon can coexist.
    """
    try:
        import pgserver
    except ImportError as exc:  # pragma: no cover - pgserver is a hard dependency
        raise EmbeddedDatabaseError(f"pgserver is not installed: {exc}") from exc
    pgdata = (data_dir / "pg").expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    lock_path = data_dir / "pg.lock"
    # Two processes initialising, starting or stopping one folder at once: serialise.
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if (pgdata / "PG_VERSION").exists():
                _start_quickly(pgdata)
            server: Any = pgserver.get_server(str(pgdata), cleanup_mode="stop")
        except EmbeddedDatabaseError:
            raise
        except Exception as exc:
            raise EmbeddedDatabaseError(
                f"could not start embedded PostgreSQL in {pgdata}: {exc}"
            ) from exc
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        yield str(server.get_uri())
    finally:
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with contextlib.suppress(Exception):
                    _leave(server, pgdata)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

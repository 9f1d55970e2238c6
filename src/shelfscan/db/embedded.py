"""An embedded PostgreSQL for users who have no server: `shelfscan scan ~/Books` just works.

pgserver does the first-time set-up (`initdb`, the server user and permissions when
we are root) and defines how processes share one postmaster: each lists its pid in
`pgdata/.handle_pids.json`, and the last one to leave stops the server. Its own
start and stop are slow for a CLI that runs for a fraction of a second (`pg_ctl -w`
polls every 100 ms, pgserver re-checks readiness once a second, `pg_ctl -w stop`
waits for the shutdown checkpoint, and importing it loads psutil). So once a folder
is initialised, shelfscan starts and joins the server itself, without importing
pgserver:

- start: `pg_ctl start` without waiting, then poll `postmaster.pid` every few ms
  until the postmaster says "ready". The caller's `while_starting` runs in between
  (the CLI imports the code of its command while PostgreSQL boots on the other core);
- stop (the last process to leave): a fast-shutdown signal, waiting only until the
  postmaster has marked itself "stopping"; the next start waits for that one to
  exit (under the same lock) before it starts a new one.

Anything unusual (no PG_VERSION yet, no server user, a socket path too long, a folder
the server user cannot reach) goes through pgserver, which knows how to fix it.
`data_dir/pg.lock` serialises every start, join and leave of one folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shelfscan.errors import ShelfscanError

READY_POLL_S = 0.005
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0
SERVER_USER = "pgserver"  # who runs the server when we are root (pgserver's choice)
HANDLES_FILE = ".handle_pids.json"  # pgserver's list of the processes using a server
_MAX_SOCKET_PATH = 107  # sockaddr_un.sun_path on Linux, less its terminating NUL


class EmbeddedDatabaseError(ShelfscanError, RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Postmaster:
    """What `postmaster.pid` says: the server's pid, its state and where it listens."""

    pid: int
    status: str  # starting | ready | stopping | standby
    socket_dir: str = ""
    host: str = ""
    port: str = ""

    @classmethod
    def read(cls, pgdata: Path) -> Postmaster | None:
        try:
            lines = (pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):
            return None
        fields = [line.strip() for line in lines] + [""] * 8
        return cls(pid, fields[7], socket_dir=fields[4], host=fields[5], port=fields[3])

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def url(self) -> str:
        """The URL pgserver gives for this server (user and database `postgres`)."""
        if self.socket_dir:
            return f"postgresql://postgres:@/postgres?host={self.socket_dir}"
        if self.host and self.port:
            return f"postgresql://postgres:@{self.host}:{self.port}/postgres"
        raise EmbeddedDatabaseError("postmaster.pid names neither a socket folder nor a port")


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


def _wait_ready(pgdata: Path) -> Postmaster:
    info = _wait(
        pgdata,
        lambda i: i is not None and i.status == "ready",
        START_TIMEOUT_S,
        "the server did not become ready",
    )
    assert info is not None
    return info


def _bin_dir() -> Path:
    """pgserver's PostgreSQL binaries, found without importing pgserver."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedDatabaseError("pgserver is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _server_user() -> str | None:
    return SERVER_USER if os.geteuid() == 0 else None


def _why_not_quick(pgdata: Path) -> str | None:
    """None when this process can start the server itself; else what pgserver must do."""
    if not (pgdata / "PG_VERSION").exists():
        return "not initialised"
    if len(str(pgdata / ".s.PGSQL.5432")) > _MAX_SOCKET_PATH:
        return "socket path too long"
    if _server_user() is not None:
        import pwd

        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return "no server user"
        # The server user must be able to reach the folder (pgserver opens up the parents).
        for parent in pgdata.parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                return f"{parent} is closed to the server user"
    return None


def _spawn(pgdata: Path) -> None:
    """`pg_ctl start` without its 100 ms polling: it returns once the postmaster is forked."""
    subprocess.run(
        [
            str(_bin_dir() / "pg_ctl"), "-D", str(pgdata), "-W",
            "-o", '-h ""', "-o", f"-k {pgdata}", "-l", str(pgdata / "log"), "start",
        ],
        check=True, user=_server_user(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        timeout=10,
    )  # fmt: skip


def _running_or_stopped(pgdata: Path) -> Postmaster | None:
    """The live server (ready or starting), or None once any previous one has exited."""
    running = Postmaster.read(pgdata)
    if running is None or not running.alive():
        return None
    if running.status != "stopping":
        return running
    # A previous process's fast shutdown: let it finish before starting another.
    _wait(
        pgdata,
        lambda i: i is None or not i.alive(),
        STOP_TIMEOUT_S,
        "the previous server did not stop",
    )
    return None


def _start_with_pgserver(pgdata: Path) -> None:
    """pgserver's own set-up and start (initdb the first time); we keep its pid entry."""
    try:
        import atexit

        import pgserver

        server: Any = pgserver.get_server(str(pgdata), cleanup_mode="stop")
    except ImportError as exc:  # pragma: no cover - pgserver is a hard dependency
        raise EmbeddedDatabaseError(f"pgserver is not installed: {exc}") from exc
    except Exception as exc:
        raise EmbeddedDatabaseError(
            f"could not start embedded PostgreSQL in {pgdata}: {exc}"
        ) from exc
    # It listed this process; leaving is ours (`_leave`), not its slow atexit stop.
    atexit.unregister(server._cleanup)
    type(server)._instances.pop(pgdata, None)


def _handles(pgdata: Path) -> list[int]:
    try:
        found = json.loads((pgdata / HANDLES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [p for p in found if isinstance(p, int)] if isinstance(found, list) else []


def _put_handles(pgdata: Path, pids: list[int]) -> None:
    (pgdata / HANDLES_FILE).write_text(json.dumps(pids), encoding="utf-8")


def _join(pgdata: Path) -> None:
    """List this process as a user of the server, starting the server if none runs."""
    reason = _why_not_quick(pgdata)
    if reason is None:
        try:
            if _running_or_stopped(pgdata) is None:
                _spawn(pgdata)
        except (OSError, subprocess.SubprocessError):
            reason = "pg_ctl failed"  # pgserver repairs what it can, then says why
    if reason is not None:
        _start_with_pgserver(pgdata)
    pids = _handles(pgdata)
    if os.getpid() not in pids:
        _put_handles(pgdata, [*pids, os.getpid()])


def _leave(pgdata: Path) -> None:
    """Drop this process from the list; the last one out asks for a fast shutdown."""
    # Processes that died without leaving (kill -9) would keep the server up for good.
    others = [p for p in _handles(pgdata) if p != os.getpid() and Postmaster(p, "").alive()]
    _put_handles(pgdata, others)
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


def start_detached(data_dir: Path) -> str:
    """Start (or find) the server and leave it running with no handle of ours: it stops
    when the last process that does hold one leaves (`shelfscan db url`, for psql)."""
    pgdata = pgdata_of(data_dir)
    with folder_lock(data_dir):
        _join(pgdata)
        url = _wait_ready(pgdata).url()  # under the lock: no one may stop it half-started
        _put_handles(pgdata, [p for p in _handles(pgdata) if p != os.getpid()])
    return url


@contextlib.contextmanager
def folder_lock(data_dir: Path) -> Iterator[None]:
    """Two processes initialising, starting, joining or leaving one folder: one at a time."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "pg.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pgdata_of(data_dir: Path) -> Path:
    return (data_dir / "pg").expanduser().resolve()


@contextlib.contextmanager
def embedded_postgres(
    data_dir: Path, *, while_starting: Callable[[], object] | None = None
) -> Iterator[str]:
    """Start (or join) the embedded server in `data_dir/pg` and yield its URL.

    Processes using the same folder share one postmaster and the last one to leave
    stops it, so a CLI scan and a daemon can coexist. `while_starting` runs while a
    server this call started is still booting (outside the folder lock).
    """
    pgdata = pgdata_of(data_dir)
    with folder_lock(data_dir):
        _join(pgdata)
    try:
        if while_starting is not None:
            while_starting()
        yield _wait_ready(pgdata).url()
    finally:
        with folder_lock(data_dir), contextlib.suppress(Exception):
            _leave(pgdata)

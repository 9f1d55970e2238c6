"""A private PostgreSQL the fault tests can stop, kill -9 and start again on the same port.

The shared test server (tests/db_fixtures.py) must never go down under other
tests, so each fault module runs its own cluster from the binaries pgserver
ships. PostgreSQL refuses to run as root; when the tests run as root the
cluster belongs to pgserver's own system user, as pgserver itself does it.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from pathlib import Path

import pgserver._commands as pg_commands

from tests.faults.processes import live_pids

BIN = Path(pg_commands.POSTGRES_BIN_PATH)
SYSTEM_USER = "pgserver"  # the user pgserver creates to run postgres when it is started as root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Cluster:
    """One postmaster on 127.0.0.1:`port`, data in `pgdata`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pgdata = base / "pgdata"
        self.sockets = base / "sockets"
        self.port = free_port()
        self._user = _run_as()
        self._postmaster: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.sockets.mkdir(exist_ok=True)
        self.pgdata.mkdir()
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            for path in (self.base, self.pgdata, self.sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            _open_path_to(self.base)
        self._run(
            "initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "--encoding=utf8",
            "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        """Run the postmaster as a child of this process, so that a killed one is reaped here.

        (pg_ctl detaches it; where PID 1 is slow to reap, a killed postmaster then
        lingers as a zombie and its PID in postmaster.pid blocks the next start.)
        """
        assert self._postmaster is None or self._postmaster.poll() is not None
        log = open(self.base / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
        self._postmaster = subprocess.Popen(
            [
                str(BIN / "postgres"), "-D", str(self.pgdata), "-h", "127.0.0.1",
                "-p", str(self.port), "-k", str(self.sockets), "-c", "max_connections=200",
                # fsync off only risks data on an OS crash, which these tests never cause.
                # synchronous_commit must stay on: with it off, a kill -9 loses commits
                # the client was told had landed, and the tests would blame shelfscan.
                "-c", "fsync=off",
            ],
            user=self._user, stdout=log, stderr=log, cwd=self.base,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + 60
        while not self.accepting():
            if self._postmaster.poll() is not None:
                raise RuntimeError(f"postgres exited at start; see {self.base / 'server.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError("postgres did not accept connections within 60 s")
            time.sleep(0.05)

    def accepting(self) -> bool:
        done = subprocess.run(
            [str(BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            check=False,
        )
        return done.returncode == 0

    def stop(self) -> None:
        """A fast shutdown, as `pg_ctl stop -m fast` does: SIGINT, then wait for it to exit."""
        self._signal_and_wait(signal.SIGINT)

    def kill9(self) -> None:
        """SIGKILL the postmaster, then wait for its orphaned backends to notice and exit.

        A new postmaster refuses to start while old backends still hold the shared memory.
        """
        self._signal_and_wait(signal.SIGKILL)
        deadline = time.monotonic() + 30
        while self.server_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        for leftover in self.server_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)

    def _signal_and_wait(self, signum: int) -> None:
        assert self._postmaster is not None and self._postmaster.poll() is None, "not running"
        self._postmaster.send_signal(signum)
        self._postmaster.wait(60)

    @property
    def running(self) -> bool:
        return self._postmaster is not None and self._postmaster.poll() is None

    def server_processes(self) -> list[int]:
        """Live postgres processes of this cluster (each runs in its data folder); zombies are dead."""
        return [pid for pid in live_pids() if _cwd_is(pid, self.pgdata)]

    def destroy(self) -> None:
        if self.running:
            self.kill9()
        for pid in self.server_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _run(self, exe: str, *args: str) -> None:
        subprocess.run(
            [str(BIN / exe), *args],
            check=True,
            user=self._user,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.base,
            timeout=90,
        )


def _cwd_is(pid: int, folder: Path) -> bool:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")) == folder
    except OSError:
        return False


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "-s", "/bin/false", SYSTEM_USER], check=True)
    # pgserver's binaries and libraries must be readable by that user.
    for path in (BIN, BIN.parent / "lib", BIN.parent / "share"):
        _open_path_to(path)
        if path.exists():
            for child in path.rglob("*"):
                mode = child.stat().st_mode
                if not mode & 0o004:
                    child.chmod(mode | 0o005 if child.is_dir() or mode & 0o100 else mode | 0o004)
    return SYSTEM_USER


def _open_path_to(path: Path) -> None:
    """Let another user traverse every folder down to `path` (o+x, as pgserver does with g+rx,o+rx)."""
    for folder in [path, *path.parents]:
        if folder.exists():
            mode = folder.stat().st_mode
            if mode & 0o005 != 0o005:
                folder.chmod(mode | 0o005)

"""The embedded PostgreSQL's quick start and stop, and the migrations fast path.

Real pgserver clusters in a temporary folder: started, shared by two processes,
stopped by the last one out, and restarted at once while the previous postmaster
may still be shutting down.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from shelfscan.db.connect import open_pool
from shelfscan.db.embedded import Postmaster, embedded_postgres
from shelfscan.db.migrate import load_migrations, migrate
from tests.db_fixtures import with_database

HOLDER = """
import sys, time
from pathlib import Path
from shelfscan.db.embedded import embedded_postgres
with embedded_postgres(Path(sys.argv[1])) as url:
    print(url, flush=True)
    sys.stdin.readline()
"""


async def _select_one(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


def _gone(pid: int, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not Postmaster(pid, "").alive():
            return True
        time.sleep(0.02)
    return False


async def test_last_process_out_stops_the_server_and_a_restart_at_once_works(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(tmp_path, 0o755)  # the server runs as its own user when we are root
    with embedded_postgres(data) as url:
        assert await _select_one(url) == 1
        first = Postmaster.read((data / "pg").resolve())
        assert first is not None and first.status == "ready"
        # A second process joins and leaves: the server stays up for us.
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(data)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline().strip() == url
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(60) == 0
        assert await _select_one(url) == 1
    # We were the last: it stops (fast shutdown, not waited for by us)...
    with embedded_postgres(data) as url:  # ...and starting again right away works.
        assert await _select_one(url) == 1
        second = Postmaster.read((data / "pg").resolve())
        assert second is not None and second.pid != first.pid
    assert _gone(second.pid)


async def test_migrate_applies_once_then_only_checks(pg_admin_url: str) -> None:
    name = f"embedded_migrate_{os.getpid()}"
    admin = await asyncpg.connect(pg_admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(pg_admin_url, name)
        async with open_pool(url) as pool:
            # An empty database: the pool's check finds no table, the locked path applies.
            applied = await migrate(url, pool)
            assert applied == [m.name for m in load_migrations()]
            assert await migrate(url, pool) == []  # the fast path, on the caller's pool
        assert await migrate(url) == []  # ...and on a connection of its own
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def test_postmaster_file_is_read_as_pgserver_writes_it(tmp_path: Path) -> None:
    (tmp_path / "postmaster.pid").write_text(
        f"{os.getpid()}\n/x\n1700000000\n5432\n/tmp\n\n  123  456\nstopping\n"
    )
    info = Postmaster.read(tmp_path)
    assert info == Postmaster(os.getpid(), "stopping", socket_dir="/tmp", port="5432")
    assert info.alive() and info.url() == "postgresql://postgres:@/postgres?host=/tmp"
    assert Postmaster.read(tmp_path / "absent") is None


FAST_JOIN = """
import json, os, sys
from pathlib import Path
from shelfscan.db.embedded import embedded_postgres
data = Path(sys.argv[1])
with embedded_postgres(data, while_starting=lambda: print("hook", flush=True)) as url:
    handles = json.loads((data / "pg" / ".handle_pids.json").read_text())
    print(json.dumps({"pgserver": "pgserver" in sys.modules, "mine": handles == [os.getpid()]}))
    print(url, flush=True)
"""


async def test_an_initialised_folder_starts_without_pgserver(tmp_path: Path) -> None:
    """pgserver does the first start (initdb); later processes start the server themselves,
    list themselves where pgserver would, run the caller's hook, and stop it on leaving."""
    data = tmp_path / "data"
    data.mkdir()
    os.chmod(tmp_path, 0o755)  # the server runs as its own user when we are root
    with embedded_postgres(data) as url:
        assert await _select_one(url) == 1
    run = subprocess.run(
        [sys.executable, "-c", FAST_JOIN, str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    hook, facts, fast_url = run.stdout.splitlines()
    assert hook == "hook"
    assert json.loads(facts) == {"pgserver": False, "mine": True}
    assert fast_url == url
    gone = Postmaster.read((data / "pg").resolve())
    assert gone is None or _gone(gone.pid)


def test_what_sends_a_start_through_pgserver(tmp_path: Path) -> None:
    """The quick start only takes a folder pgserver has set up; anything else is its job."""
    from shelfscan.db.embedded import SERVER_USER, _why_not_quick

    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert _why_not_quick(fresh) == "not initialised"
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    (deep / "PG_VERSION").write_text("16\n")
    assert _why_not_quick(deep) == "socket path too long"
    # Directly under the temporary folder (pytest's own folders above tmp_path are 0700).
    base = Path(tempfile.mkdtemp())
    try:
        ready = base / "pg"
        ready.mkdir()
        (ready / "PG_VERSION").write_text("16\n")
        closed = _why_not_quick(ready)  # mkdtemp makes it 0700
        os.chmod(base, 0o755)
        opened = _why_not_quick(ready)
    finally:
        shutil.rmtree(base)
    if os.geteuid() != 0:  # the server runs as this user: nothing to check
        assert closed is None and opened is None
        return
    import pwd

    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:  # pgserver creates it on its first start
        assert closed == opened == "no server user"
        return
    # As root the server runs as its own user, who must reach the folder.
    assert closed == f"{base} is closed to the server user"
    assert opened is None

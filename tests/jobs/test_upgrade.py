"""Upgrading a database that the old job code wedged: migration 0008 unwedges it."""

from __future__ import annotations

import json
import uuid

import asyncpg
import structlog

from shelfscan.db.migrate import _apply, load_migrations, migrate
from shelfscan.jobs.queue import JobQueue
from tests.db_fixtures import with_database


async def test_0008_unwedges_what_the_old_code_left_behind(pg_admin_url: str) -> None:
    name = f"t_up_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(pg_admin_url, name)
    try:
        conn = await asyncpg.connect(url)
        try:
            old = [m for m in load_migrations() if m.version < 8]
            await _apply(conn, old, structlog.get_logger())
            library_id = await conn.fetchval(
                "INSERT INTO shelfscan.libraries (name) VALUES ('lib') RETURNING id"
            )
            payload = json.dumps({"library_id": library_id})
            # An interrupted old CLI scan: running, no lease, blocks the library for good.
            wedged = await conn.fetchval(
                "INSERT INTO shelfscan.jobs (kind, payload, state, attempts, owner) "
                "VALUES ('scan_library', $1::jsonb, 'running', 1, 'host:123') RETURNING id",
                payload,
            )
            # A watch scan an old daemon ran beside it (the old index did not cover it).
            beside = await conn.fetchval(
                "INSERT INTO shelfscan.jobs (kind, payload, state, owner, lease_expires_at) "
                "VALUES ('scan_path', $1::jsonb, 'running', 'd', now() + interval '1 h') "
                "RETURNING id",
                json.dumps({"library_id": library_id, "root_id": 1, "paths": [""]}),
            )
        finally:
            await conn.close()
        # 0008 and whatever later migrations exist (0011, the change feed, ...).
        assert (await migrate(url))[0] == "0008_jobs_contract.sql"
        conn = await asyncpg.connect(url)
        try:
            assert (
                await conn.fetchval("SELECT state FROM shelfscan.jobs WHERE id = $1", beside)
                == "queued"
            )
        finally:
            await conn.close()
        from shelfscan.db.connect import open_pool

        async with open_pool(url, max_size=2) as pool:
            report = await JobQueue(pool, "new", 30).reap()
            assert [(r.id, r.state) for r in report.reaped] == [(wedged, "queued")]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

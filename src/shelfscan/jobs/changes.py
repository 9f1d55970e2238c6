"""The change feed's one writer: `shelfscan.catalogue_changes` rows and their NOTIFY.

A scan reports the books each committed step changed (`ScanReporter.changes`);
the job layer records them here, in one short transaction for the steps waiting
to be recorded (one, or several when commits came faster than this): take the
feed's advisory lock (so `seq` order is commit order), insert one row per book,
and `NOTIFY shelfscan_catalogue` with the library and the highest `seq`, which
PostgreSQL delivers when the transaction commits. A book server LISTENs and then
reads every row after the last `seq` it processed (docs/sql-contract.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import asyncpg

from shelfscan.scan.contract import CatalogueChanges

CHANNEL = "shelfscan_catalogue"
# pg_advisory_xact_lock(key1, key2): the first key is shelfscan's, as in 0003_job_queue.sql.
_FEED_LOCK = (1399676259, 11)


async def record_changes(
    pool: asyncpg.Pool, job_id: int, steps: Sequence[CatalogueChanges]
) -> int | None:
    """Record the `steps` of `job_id` (one library's, in commit order) in one transaction;
    returns the highest `seq` written (None: nothing to write)."""
    rows = [row for step in steps for row in step.rows()]
    if not rows:
        return None
    library_id = steps[0].library_id
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *_FEED_LOCK)
        seq: int = await conn.fetchval(
            """
            WITH ins AS (
                INSERT INTO shelfscan.catalogue_changes (library_id, book_id, change, job_id)
                SELECT $1, t.book_id, t.change, $4
                FROM unnest($2::bigint[], $3::text[]) WITH ORDINALITY AS t(book_id, change, n)
                ORDER BY t.n
                RETURNING seq
            )
            SELECT max(seq) FROM ins
            """,
            library_id,
            [book_id for book_id, _ in rows],
            [kind.value for _, kind in rows],
            job_id,
        )
        await conn.execute(
            "SELECT pg_notify($1, $2)",
            CHANNEL,
            json.dumps({"library_id": library_id, "seq": seq}),
        )
    return seq

"""Every log line is JSON and redacted, the standard library's (asyncpg's) included; every
connection says which shelfscan process holds it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import asyncpg
import pytest
import structlog

from shelfscan.db.connect import connect, open_pool
from shelfscan.logs import configure_logging


@pytest.fixture
def json_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configure_logging("json", "info")
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.usefixtures("json_logging")
def test_stdlib_records_go_through_the_json_renderer_and_the_redaction(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logging.getLogger("asyncpg.pool").warning(
        "connection to postgresql://shelf:s3cret@db:5432/x lost (%d)", 3
    )
    try:
        raise ConnectionResetError("reset by peer")
    except ConnectionResetError:
        logging.getLogger("asyncpg").exception("reconnect failed")
    logging.getLogger("asyncpg").debug("not shown at info")
    lines = capsys.readouterr().err.splitlines()
    docs = [json.loads(line) for line in lines]  # every line is JSON
    assert [(d["logger"], d["level"], d["event"]) for d in docs] == [
        ("asyncpg.pool", "warning", "connection to postgresql://shelf:***@db:5432/x lost (3)"),
        ("asyncpg", "error", "reconnect failed"),
    ]
    assert docs[1]["exception"][0]["exc_type"] == "ConnectionResetError"
    assert "s3cret" not in "".join(lines)


async def test_connections_carry_an_application_name(db_url: str) -> None:
    async with open_pool(db_url, max_size=1, application_name="shelfscan-daemon") as pool:
        listener = await connect(db_url, application_name="shelfscan-daemon/listener")
        try:
            names = {
                r["application_name"]
                for r in await pool.fetch(
                    "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
                )
            }
        finally:
            await listener.close()
    assert {"shelfscan-daemon", "shelfscan-daemon/listener"} <= names
    assert isinstance(pool, asyncpg.Pool)

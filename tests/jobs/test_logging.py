"""Every log line is JSON and redacted, the standard library's (asyncpg's) included; every
connection says which shelfscan process holds it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
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


_LOG_AN_ERROR = """
import sys
import shelfscan.cli
import structlog
from shelfscan.logs import configure_logging
print("rich" in sys.modules, "pygments" in sys.modules, flush=True)
for fmt in ("console", "json"):
    configure_logging(fmt, "info")
    try:
        raise ValueError("bad value")
    except ValueError:
        structlog.get_logger("t").exception("failed", n=1)
import rich.progress  # the progress bar still has it
"""


def test_the_cli_imports_structlog_without_rich_and_still_renders_tracebacks() -> None:
    """structlog would load rich and pygments at import (a quarter of the CLI's start-up)
    for tracebacks shelfscan does not use; hidden from it, the lines come out the same."""
    run = subprocess.run(
        [sys.executable, "-c", _LOG_AN_ERROR], capture_output=True, text=True, check=True
    )
    assert run.stdout.splitlines() == ["False False"]
    console, _, last = run.stderr.rstrip("\n").rpartition("\n")
    assert console.splitlines()[1:] == [
        "Traceback (most recent call last):",
        '  File "<string>", line 10, in <module>',
        "ValueError: bad value",
    ]
    doc = json.loads(last)
    assert (doc["event"], doc["n"]) == ("failed", 1)
    assert [(e["exc_type"], e["exc_value"]) for e in doc["exception"]] == [
        ("ValueError", "bad value")
    ]

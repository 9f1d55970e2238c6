"""The fault suite: real daemons and CLI scans against a PostgreSQL each module controls.

Each module gets its own cluster (tests/faults/pgcluster.py) so that stopping,
killing or starving it cannot touch any other test; each test gets a fresh,
migrated database on it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from shelfscan.db.migrate import migrate
from tests.db_fixtures import with_database
from tests.faults.pgcluster import Cluster


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: fault suite (real processes, a PostgreSQL it stops and kills)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    base = Path(tempfile.mkdtemp(prefix="shelfscan-faults-"))
    os.chmod(base, 0o755)  # the cluster may run as pgserver's user when the tests run as root
    server = Cluster(base / "pg")
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def fault_db(cluster: Cluster) -> AsyncIterator[str]:
    """A fresh, migrated database on the module's cluster; the cluster is up again afterwards."""
    if not cluster.running:
        cluster.start()
    name = f"f_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(cluster.url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = with_database(cluster.url, name)
    await migrate(url)
    yield url
    if not cluster.running:
        cluster.start()

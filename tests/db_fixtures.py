"""A real PostgreSQL for the tests, found the way the README promises.

TEST_DATABASE_URL if set; else a testcontainers PostgreSQL where a Docker engine
answers and can start the image (an engine with no registry to pull from cannot:
then, as with no engine at all, the tests use an embedded pgserver started once
per test session). Each test gets
its own database cloned from a migrated template, so tests never see each
other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from shelfscan.db.connect import open_pool
from shelfscan.db.migrate import migrate
from shelfscan.errors import one_line

NewDatabase = Callable[[], Awaitable[str]]


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def _docker_answers() -> bool:
    if not (os.environ.get("DOCKER_HOST") or Path("/var/run/docker.sock").exists()):
        return False
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


POSTGRES_IMAGE = "postgres:16-alpine"


def _start_container() -> Any | None:
    """A running PostgreSQL container, or None (with the reason on stderr) when the engine
    cannot provide one: the image is not there and cannot be pulled, the engine refuses."""
    from testcontainers.postgres import PostgresContainer

    container = None
    try:
        container = PostgresContainer(POSTGRES_IMAGE, driver=None)
        container.start()
    except Exception as exc:
        print(
            f"db_fixtures: Docker answers but cannot run {POSTGRES_IMAGE} ({one_line(exc)}); "
            "using the embedded PostgreSQL",
            file=sys.stderr,
        )
        if container is not None:
            with contextlib.suppress(Exception):
                container.stop()
        return None
    return container


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    container = _start_container() if _docker_answers() else None
    if container is not None:
        try:
            yield container.get_connection_url()
        finally:
            container.stop()
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="shelfscan-test-pg-") as tmp:
        os.chmod(tmp, 0o755)  # pgserver may run postgres as its own user when we are root
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> Iterator[str]:
    name = f"shelfscan_tpl_{os.getpid()}"

    async def setup() -> None:
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        await migrate(with_database(pg_admin_url, name))

    asyncio.run(setup())
    yield with_database(pg_admin_url, name)

    async def teardown() -> None:
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(teardown())


@pytest.fixture
async def new_database(pg_admin_url: str, template_url: str) -> AsyncIterator[NewDatabase]:
    """`await new_database()`: the URL of another fresh, migrated database (dropped after)."""
    made: list[str] = []
    template = urlsplit(template_url).path.lstrip("/")

    async def create() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await conn.close()
        made.append(name)
        return with_database(pg_admin_url, name)

    yield create
    conn = await asyncpg.connect(pg_admin_url)
    try:
        for name in made:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def db_url(new_database: NewDatabase) -> str:
    """A fresh, migrated database for one test."""
    return await new_database()


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[asyncpg.Pool]:
    async with open_pool(db_url, max_size=10) as p:
        yield p

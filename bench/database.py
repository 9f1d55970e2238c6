"""Databases for the cases: a migrated template, snapshots, one clone per case."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class Database:
    """Databases for the cases: a migrated template, snapshots, one clone per case."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"bench_{os.getpid()}_"
        self.template = self.prefix + "tpl"
        self.made: list[str] = []

    async def sql(self, *statements: str) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self.admin_url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def version(self) -> str:
        conn: asyncpg.Connection = await asyncpg.connect(self.admin_url)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    def url(self, name: str) -> str:
        return with_database(self.admin_url, name)

    async def create_template(self) -> None:
        from shelfscan.db.migrate import migrate

        await self.create(self.template, None)
        await migrate(self.url(self.template))

    async def create(self, name: str, template: str | None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        await self.sql(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"{clause}'
        )
        self.made.append(name)
        # A clone writes its pages; flush them now, not during the next timed scan.
        with contextlib.suppress(asyncpg.PostgresError):
            await self.sql("CHECKPOINT")
        return self.url(name)

    async def drop(self, name: str) -> None:
        await self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.made:
            self.made.remove(name)

    async def drop_all(self) -> None:
        for name in list(reversed(self.made)):
            with contextlib.suppress(Exception):
                await self.drop(name)


@contextlib.contextmanager
def database_server(url: str | None) -> Iterator[str]:
    """The given server, or an embedded pgserver in a temporary folder for this run."""
    if url:
        yield url
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="shelfscan-bench-pg-") as tmp:
        os.chmod(tmp, 0o755)  # pgserver runs postgres as its own user when we are root
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()

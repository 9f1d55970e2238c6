"""A TCP proxy in front of PostgreSQL that can lose the answer to a COMMIT, or refuse everyone.

Some faults cannot be timed from outside: "the COMMIT landed but its answer
never arrived" needs the connection cut after the server committed and
before the client heard. The proxy forwards bytes both ways; armed with
`lose_commit_answer`, it lets the next COMMIT through to the server and closes
the client's socket instead of passing the server's reply. `down` makes it
close every connection at once, like a server that is not there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class PgProxy:
    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        query = dict(parse_qsl(parts.query))
        port = parts.port or int(query.pop("port", "5432"))
        socket_dir = query.pop("host", "")
        # The tests' own server may listen on a Unix socket only (pgserver): `?host=/dir`.
        self._unix = f"{socket_dir}/.s.PGSQL.{port}" if socket_dir.startswith("/") else None
        self._target = (parts.hostname or socket_dir or "127.0.0.1", port)
        self._parts = parts._replace(query=urlencode(query))
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.lose_commit_answer = False
        self.commits_lost = 0
        self.down = False

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        netloc = self._parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{port}"
        netloc_out = f"{netloc[0]}@{host}" if len(netloc) == 2 else host
        return urlunsplit((self._parts.scheme, netloc_out, self._parts.path, self._parts.query, ""))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.cut_all()

    def cut_all(self) -> None:
        for writer in list(self._links):
            writer.transport.abort()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.down:
            client_w.transport.abort()
            return
        try:
            if self._unix is not None:
                server_r, server_w = await asyncio.open_unix_connection(self._unix)
            else:
                server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            return
        self._links.update((client_w, server_w))
        commit_sent = asyncio.Event()

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if self.lose_commit_answer and b"COMMIT" in data:
                    commit_sent.set()
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if commit_sent.is_set():
                    # The server has answered the COMMIT, so it committed: lose the answer.
                    self.lose_commit_answer = False
                    self.commits_lost += 1
                    return
                client_w.write(data)
                await client_w.drain()

        tasks = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_w, server_w):
                self._links.discard(writer)
                writer.transport.abort()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, OSError):
                    await task


@contextlib.asynccontextmanager
async def pg_proxy(target_url: str) -> AsyncIterator[PgProxy]:
    proxy = PgProxy(target_url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()

"""LISTEN on a dedicated connection (never from the pool), reconnecting with backoff.

A NOTIFY only wakes the claim loop early; the daemon polls anyway, so a lost
notification costs at most one poll interval. After every (re)connect the claim
loop is woken at once, since notifications sent while disconnected are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import structlog

from shelfscan.db.connect import connect
from shelfscan.errors import one_line
from shelfscan.jobs.queue import CHANNEL


class Listener:
    def __init__(
        self,
        url: str,
        on_wake: Callable[[], None],
        on_cancel: Callable[[int], None],
        *,
        check_interval_s: float = 5.0,
        application_name: str = "shelfscan-daemon/listener",
    ) -> None:
        self._url = url
        self._application_name = application_name
        self._on_wake = on_wake
        self._on_cancel = on_cancel
        self._check_interval_s = check_interval_s
        self._log = structlog.get_logger("shelfscan.listener")
        self.connected = False
        self.connects = 0
        self.last_ok = 0.0
        self.backend_pid: int | None = None

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            message = json.loads(payload)
        except ValueError:
            message = {}
        if message.get("type") == "cancel" and isinstance(message.get("id"), int):
            self._on_cancel(message["id"])
        else:
            self._on_wake()

    async def run(self) -> None:
        delay = 0.5
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await connect(self._url, application_name=self._application_name)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._notified)
                self.backend_pid = conn.get_server_pid()
                self.connected, self.connects, delay = True, self.connects + 1, 0.5
                self.last_ok = time.monotonic()
                self._log.info("listener_connected", backend_pid=self.backend_pid)
                self._on_wake()
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), self._check_interval_s)
                    if not lost.is_set():
                        # A silent dead socket only shows itself when we use it.
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), self._check_interval_s)
                        self.last_ok = time.monotonic()
                raise ConnectionError("listener connection closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected = False
                self._log.warning(
                    "listener_disconnected", error=one_line(exc), retry_in_s=round(delay, 2)
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                self.connected = False
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)

    def healthy(self) -> bool:
        return self.connected and time.monotonic() - self.last_ok < self._check_interval_s * 3

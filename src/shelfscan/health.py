"""`/healthz` and `/metrics` for a daemon, on a tiny asyncio HTTP server.

Gauges about the queue (jobs by state and kind, oldest queued job) are read
from the database at scrape time, so every replica reports the same truth.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from shelfscan.jobs.store import QueueGauges, queue_gauges
from shelfscan.jobs.worker import Daemon


def parse_listen(value: str) -> tuple[str, int]:
    """':8080' -> ('0.0.0.0', 8080); 'host:port' as given."""
    host, _, port = value.rpartition(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--http wants HOST:PORT or :PORT, not {value!r}")
    return host or "0.0.0.0", int(port)


class Metrics:
    def __init__(self, pool: asyncpg.Pool, daemon: Daemon) -> None:
        self.pool = pool
        self.daemon = daemon
        self.registry = CollectorRegistry()
        self._gauges = QueueGauges((), 0.0)
        self.registry.register(self)

    async def refresh(self) -> None:
        self._gauges = await queue_gauges(self.pool)

    def collect(self) -> list[GaugeMetricFamily | CounterMetricFamily]:
        jobs = GaugeMetricFamily(
            "shelfscan_jobs", "Jobs by state and kind", labels=["state", "kind"]
        )
        for state, kind, n in self._gauges.by_state_kind:
            jobs.add_metric([state, kind], n)
        stats = self.daemon.stats
        finished = CounterMetricFamily(
            "shelfscan_jobs_finished", "Jobs this daemon finished, by final state", labels=["state"]
        )
        for state, n in stats.jobs_finished.items():
            finished.add_metric([state], n)
        rate = self.daemon.scan_rate()
        return [
            jobs,
            finished,
            GaugeMetricFamily(
                "shelfscan_oldest_queued_job_age_seconds",
                "Age of the oldest due queued job",
                value=self._gauges.oldest_queued_s,
            ),
            CounterMetricFamily(
                "shelfscan_books_written",
                "Books this daemon added or updated (a split scan counted once, by its parts)",
                value=stats.books_written,
            ),
            CounterMetricFamily(
                "shelfscan_files_failed",
                "Files this daemon could not read",
                value=stats.files_failed,
            ),
            CounterMetricFamily(
                "shelfscan_lease_expirations",
                "Leases this daemon found expired",
                value=stats.lease_expirations,
            ),
            CounterMetricFamily(
                "shelfscan_heartbeats_late",
                "Heartbeats that ran late (blocked loop)",
                value=stats.heartbeats_late,
            ),
            GaugeMetricFamily(
                "shelfscan_scan_rate_files_per_second",
                "Current scan rate of running jobs",
                value=rate,
            ),
            GaugeMetricFamily(
                "shelfscan_running_jobs",
                "Jobs running in this daemon",
                value=len(self.daemon.running_jobs),
            ),
        ]


class HealthServer:
    def __init__(self, pool: asyncpg.Pool, daemon: Daemon) -> None:
        self.pool = pool
        self.daemon = daemon
        self.metrics = Metrics(pool, daemon)

    async def health(self) -> tuple[int, dict[str, Any]]:
        """200 when every loop is alive and recently successful and the database answers.

        The body names each check, and for the daemon's loops how they are doing, so a
        503 says which loop stopped or keeps failing.
        """
        checks: dict[str, Any] = dict(self.daemon.healthy())
        try:
            await asyncio.wait_for(self.pool.fetchval("SELECT 1"), 2)
            checks["database"] = True
        except Exception:
            checks["database"] = False
        status = 200 if all(checks.values()) else 503
        return status, {**checks, "loops": self.daemon.loop_report()}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)).strip():
                pass  # headers are not needed
            parts = request.decode("latin-1").split()
            path = parts[1] if len(parts) > 1 else "/"
            if path == "/healthz":
                status, checks = await self.health()
                body, ctype = json.dumps(checks).encode(), "application/json"
            elif path == "/metrics":
                await self.metrics.refresh()
                status, body, ctype = (
                    200,
                    generate_latest(self.metrics.registry),
                    "text/plain; version=0.0.4",
                )
            else:
                status, body, ctype = 404, b"not found\n", "text/plain"
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncpg.PostgresError, OSError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def serving(self, host: str, port: int) -> AsyncIterator[asyncio.Server]:
        server = await asyncio.start_server(self.handle, host, port)
        try:
            yield server
        finally:
            server.close()
            await server.wait_closed()

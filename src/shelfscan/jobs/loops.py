"""Background loops that cannot die silently.

A daemon is only as healthy as its slowest-failing loop: a heartbeat that died on an
unexpected driver error (asyncpg's InternalClientError is not an InterfaceError) once
left /healthz 503 for good without a log line, and a dead reaper left it 200 while
expired jobs piled up. So every loop runs its body through `forever`, which survives
any Exception, logs it as one line, backs off, and records its state in a `LoopState`
that /healthz reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from shelfscan.errors import one_line
from shelfscan.jobs.queue import backoff_seconds

# A failing loop retries after 0.5 s, 1 s, 2 s, ... up to this.
MAX_BACKOFF_S = 30.0


@dataclass(slots=True)
class LoopState:
    """How one loop is doing; `stale_s` is how long a silent loop may go before it is unhealthy."""

    name: str
    stale_s: float
    last_ok: float = 0.0
    failures: int = 0  # in a row
    last_error: str | None = None
    running: bool = False

    def ok(self) -> None:
        self.last_ok, self.failures = time.monotonic(), 0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.last_error = one_line(exc)

    def healthy(self) -> bool:
        return self.running and self.failures < 3 and time.monotonic() - self.last_ok < self.stale_s

    def report(self) -> dict[str, Any]:
        return {
            "ok": self.healthy(),
            "running": self.running,
            "failures": self.failures,
            "last_error": self.last_error,
            "last_ok_s_ago": round(time.monotonic() - self.last_ok, 1) if self.last_ok else None,
        }


async def forever(
    state: LoopState,
    step: Callable[[], Awaitable[float]],
    log: Any,
    *,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run `step` (which returns how long to sleep before the next run) until cancelled or stopped."""
    state.running = True
    try:
        while stopping is None or not stopping.is_set():
            try:
                pause = await step()
                state.ok()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                state.failed(exc)
                pause = backoff_seconds(state.failures, base=0.5, cap=MAX_BACKOFF_S)
                log.warning(
                    "loop_failed",
                    loop=state.name,
                    error=state.last_error,
                    error_type=type(exc).__name__,
                    failures=state.failures,
                    retry_in_s=round(pause, 2),
                )
            if pause > 0:
                if stopping is None:
                    await asyncio.sleep(pause)
                else:
                    await _sleep_or_stop(stopping, pause)
    except BaseException as exc:
        if not isinstance(exc, asyncio.CancelledError):
            log.error("loop_stopped", loop=state.name, error=one_line(exc))
        raise
    finally:
        state.running = False


async def _sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)

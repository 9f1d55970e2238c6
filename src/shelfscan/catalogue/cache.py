"""An async single-flight cache: one future per key, shared by every caller.

Concurrent scan workers asking for the same person or genre must not each
create a row; they await the one look-up that is already in flight. Keys that
are missing are looked up together, so a chunk of books costs one round trip
per entity kind rather than one per name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from shelfscan.errors import ShelfscanError

K = TypeVar("K", bound=Hashable)
P = TypeVar("P")
V = TypeVar("V")

Loader = Callable[[dict[K, P]], Awaitable[Mapping[K, V]]]


class LookupMissing(ShelfscanError, LookupError):
    """The loader returned no value for a key it was asked for."""


class SingleFlightCache(Generic[K, P, V]):
    """Maps keys to values; `P` is what the loader needs to create a missing value."""

    def __init__(self, loader: Loader[K, P, V]) -> None:
        self._loader = loader
        self._futures: dict[K, asyncio.Future[V]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.loads = 0

    def __len__(self) -> int:
        return len(self._futures)

    def __contains__(self, key: object) -> bool:
        """True when `key` has a value or a look-up in flight: asking for it costs no round trip."""
        return key in self._futures

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._futures))

    async def get_many(self, wanted: Mapping[K, P] | Iterable[tuple[K, P]]) -> dict[K, V]:
        items = dict(wanted.items() if isinstance(wanted, Mapping) else wanted)
        missing = {key: payload for key, payload in items.items() if key not in self._futures}
        if missing:
            loop = asyncio.get_running_loop()
            created = {key: loop.create_future() for key in missing}
            self._futures.update(created)
            # The look-up runs in its own task: a cancelled caller must not cancel
            # the look-up the other callers are waiting for.
            task = loop.create_task(self._load(missing, created))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        futures = [(key, self._futures[key]) for key in items]
        # Most keys of a busy scan are hits whose value is already there: only the
        # look-ups still in flight are awaited (shielded, so a cancelled caller leaves them
        # running for the others); a failed one raises here as from `result()`.
        in_flight = [fut for _, fut in futures if not fut.done()]
        if in_flight:
            await asyncio.gather(*(asyncio.shield(fut) for fut in in_flight))
        return {key: fut.result() for key, fut in futures}

    async def get(self, key: K, payload: P) -> V:
        return (await self.get_many({key: payload}))[key]

    async def _load(self, missing: dict[K, P], created: dict[K, asyncio.Future[V]]) -> None:
        self.loads += 1
        try:
            found = await self._loader(missing)
        except BaseException as exc:
            # A failure is not cached: the next caller starts a fresh look-up.
            for key, fut in created.items():
                self._forget(key, fut)
                if not fut.done():
                    fut.set_exception(
                        exc if isinstance(exc, Exception) else LookupMissing(str(exc))
                    )
                    fut.exception()  # the waiters get it; no "never retrieved" noise
            if not isinstance(exc, Exception):
                raise
            return
        for key, fut in created.items():
            if fut.done():
                continue
            if key in found:
                fut.set_result(found[key])
            else:
                self._forget(key, fut)
                fut.set_exception(LookupMissing(f"no value for {key!r}"))
                fut.exception()

    def _forget(self, key: K, fut: asyncio.Future[V]) -> None:
        if self._futures.get(key) is fut:
            del self._futures[key]

"""The single-flight cache: one look-up per key however many workers ask at once."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shelfscan.catalogue.cache import SingleFlightCache
from shelfscan.catalogue.entities import EntityKey, EntityName, EntityResolver
from shelfscan.names import name_key


async def _library(pool: asyncpg.Pool, name: str = "lib") -> int:
    library_id: int = await pool.fetchval(
        "INSERT INTO shelfscan.libraries (name) VALUES ($1) RETURNING id", name
    )
    return library_id


async def test_hundred_concurrent_lookups_make_one_row_and_one_round_trip(
    pool: asyncpg.Pool,
) -> None:
    library_id = await _library(pool)
    resolver = EntityResolver(pool)
    key = EntityKey("persons", library_id, name_key("Ursula K. Le Guin"))
    name = EntityName("Ursula K. Le Guin", "Le Guin, Ursula K.")
    ids = await asyncio.gather(*(resolver.resolve({key: name}) for _ in range(100)))
    assert len({r[key] for r in ids}) == 1
    assert resolver.round_trips == 1
    rows = await pool.fetch("SELECT id, name, sort_name FROM shelfscan.persons")
    assert [(r["id"], r["name"], r["sort_name"]) for r in rows] == [
        (ids[0][key], "Ursula K. Le Guin", "Le Guin, Ursula K.")
    ]


async def test_spellings_that_differ_by_case_and_spacing_are_one_entity(pool: asyncpg.Pool) -> None:
    library_id = await _library(pool)
    resolver = EntityResolver(pool)
    first = await resolver.resolve(
        {
            EntityKey("genres", library_id, name_key("Science  Fiction")): EntityName(
                "Science Fiction"
            )
        }
    )
    second = await resolver.resolve(
        {
            EntityKey("genres", library_id, name_key("SCIENCE fiction")): EntityName(
                "SCIENCE fiction"
            )
        }
    )
    assert list(first.values()) == list(second.values())
    assert await pool.fetchval("SELECT name FROM shelfscan.genres") == "Science Fiction"


async def test_a_second_resolver_finds_rows_a_first_one_created(pool: asyncpg.Pool) -> None:
    """Two daemons have two caches; the database keeps them to one row per name."""
    library_id = await _library(pool)
    names = {
        EntityKey("tags", library_id, name_key(f"tag {i}")): EntityName(f"Tag {i}")
        for i in range(50)
    }
    a, b = EntityResolver(pool), EntityResolver(pool)
    ids_a, ids_b = await asyncio.gather(a.resolve(names), b.resolve(names))
    assert ids_a == ids_b
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.tags") == 50


async def test_a_failed_lookup_is_not_cached_and_the_next_caller_retries(
    pool: asyncpg.Pool,
) -> None:
    resolver = EntityResolver(pool)
    key = EntityKey("series", 4242, name_key("Discworld"))  # library 4242 does not exist yet
    waiters = [resolver.resolve({key: EntityName("Discworld")}) for _ in range(10)]
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, asyncpg.ForeignKeyViolationError) for r in results)
    assert resolver.loads == 1
    await pool.execute("INSERT INTO shelfscan.libraries (id, name) VALUES (4242, 'late')")
    found = await resolver.resolve({key: EntityName("Discworld")})
    assert resolver.loads == 2
    assert found[key] == await pool.fetchval(
        "SELECT id FROM shelfscan.series WHERE library_id = 4242"
    )


async def test_cancelling_one_waiter_does_not_poison_the_others() -> None:
    release = asyncio.Event()
    calls: list[dict[str, str]] = []

    async def loader(missing: dict[str, str]) -> dict[str, int]:
        calls.append(missing)
        await release.wait()
        return {k: len(v) for k, v in missing.items()}

    cache: SingleFlightCache[str, str, int] = SingleFlightCache(loader)
    first = asyncio.create_task(cache.get("k", "abc"))
    others = [asyncio.create_task(cache.get("k", "abc")) for _ in range(5)]
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await asyncio.gather(*others) == [3] * 5
    with pytest.raises(asyncio.CancelledError):
        await first
    assert len(calls) == 1
    assert await cache.get("k", "ignored") == 3  # still cached, no new load
    assert len(calls) == 1


async def test_missing_keys_of_one_call_are_loaded_together() -> None:
    calls: list[set[str]] = []

    async def loader(missing: dict[str, None]) -> dict[str, str]:
        calls.append(set(missing))
        return {k: k.upper() for k in missing}

    cache: SingleFlightCache[str, None, str] = SingleFlightCache(loader)
    assert await cache.get_many({"a": None, "b": None}) == {"a": "A", "b": "B"}
    assert await cache.get_many({"b": None, "c": None}) == {"b": "B", "c": "C"}
    assert calls == [{"a", "b"}, {"c"}]

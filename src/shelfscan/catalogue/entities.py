"""Find-or-create for people, series, genres, tags and publishers, batched and single-flight."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

import asyncpg

from shelfscan.catalogue.cache import SingleFlightCache
from shelfscan.db.retry import Backoff, retry_on_lost_connection
from shelfscan.pgtext import pg_text, pg_text_or_none

EntityKind = Literal["persons", "series", "genres", "tags", "publishers", "subjects"]
ENTITY_KINDS: tuple[EntityKind, ...] = (
    "persons",
    "series",
    "genres",
    "tags",
    "publishers",
    "subjects",  # comics (issue 10): the key is "<kind>:<name key>", e.g. "character:batman"
)


@dataclass(frozen=True, slots=True)
class EntityKey:
    kind: EntityKind
    library_id: int
    key: str


@dataclass(frozen=True, slots=True)
class EntityName:
    """What a row is created with when the key is new: first spelling wins."""

    name: str
    sort_name: str | None = None


@dataclass(frozen=True, slots=True)
class CacheFigures:
    """One entity kind's share of the single-flight cache's work during a scan."""

    entries: int = 0  # keys the cache holds
    lookups: int = 0  # keys asked for
    hits: int = 0  # keys answered without a new look-up (cached or already in flight)
    round_trips: int = 0  # upsert statements sent to the database

    def __add__(self, other: CacheFigures) -> CacheFigures:
        return CacheFigures(
            self.entries + other.entries,
            self.lookups + other.lookups,
            self.hits + other.hits,
            self.round_trips + other.round_trips,
        )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# The SELECT sees rows committed before the statement; the INSERT adds the rest.
# A row another process commits in between is neither, so the caller retries.
_UPSERT = """
WITH input AS (
    SELECT DISTINCT ON (k) k, n, s FROM unnest($2::text[], $3::text[], $4::text[]) AS t(k, n, s)
), ins AS (
    INSERT INTO shelfscan.{table} (library_id, name_key, name{sort_col})
    SELECT $1, k, n{sort_val} FROM input
    ON CONFLICT (library_id, name_key) DO NOTHING
    RETURNING id, name_key
)
SELECT id, name_key FROM ins
UNION ALL
SELECT e.id, e.name_key FROM shelfscan.{table} e JOIN input ON e.name_key = input.k
WHERE e.library_id = $1
"""


def _upsert_sql(kind: EntityKind) -> str:
    if kind == "persons":
        return _UPSERT.format(table=kind, sort_col=", sort_name", sort_val=", s")
    return _UPSERT.format(table=kind, sort_col="", sort_val="")


class EntityResolver:
    """Turns entity names into row ids for the lifetime of one scan or daemon.

    A look-up that loses its connection is repeated on a new one: the upsert
    is idempotent, so a killed backend costs a pause, never a duplicate row.
    """

    def __init__(self, pool: asyncpg.Pool, backoff: Backoff | None = None) -> None:
        self._pool = pool
        self._backoff = backoff or Backoff()
        self._cache: SingleFlightCache[EntityKey, EntityName, int] = SingleFlightCache(self._load)
        self._sql = {kind: _upsert_sql(kind) for kind in ENTITY_KINDS}
        self._lookups: Counter[EntityKind] = Counter()
        self._hits: Counter[EntityKind] = Counter()
        self._round_trips: Counter[EntityKind] = Counter()

    @property
    def loads(self) -> int:
        return self._cache.loads

    @property
    def round_trips(self) -> int:
        return sum(self._round_trips.values())

    def figures(self) -> dict[str, CacheFigures]:
        """Per kind: entries, look-ups, hits, round trips (a scan's finish event reports them)."""
        entries = Counter(key.kind for key in self._cache)
        return {
            kind: CacheFigures(
                entries[kind], self._lookups[kind], self._hits[kind], self._round_trips[kind]
            )
            for kind in ENTITY_KINDS
        }

    async def resolve(self, wanted: Mapping[EntityKey, EntityName]) -> dict[EntityKey, int]:
        if not wanted:
            return {}
        for key in wanted:
            self._lookups[key.kind] += 1
            if key in self._cache:
                self._hits[key.kind] += 1
        return await self._cache.get_many(wanted)

    async def _load(self, missing: dict[EntityKey, EntityName]) -> dict[EntityKey, int]:
        groups: dict[tuple[EntityKind, int], dict[str, EntityName]] = defaultdict(dict)
        for ek, name in missing.items():
            groups[(ek.kind, ek.library_id)][ek.key] = name

        async def attempt() -> dict[EntityKey, int]:
            found: dict[EntityKey, int] = {}
            async with self._pool.acquire() as conn:
                for (kind, library_id), names in groups.items():
                    for key, row_id in (await self._upsert(conn, kind, library_id, names)).items():
                        found[EntityKey(kind, library_id, key)] = row_id
            return found

        return await retry_on_lost_connection(attempt, "resolving names", self._backoff)

    async def _upsert(
        self,
        conn: asyncpg.Connection,
        kind: EntityKind,
        library_id: int,
        names: dict[str, EntityName],
    ) -> dict[str, int]:
        # Keys as stored (NULs dropped, bad bytes escaped by pg_text) back to the caller's keys.
        stored: dict[str, list[str]] = defaultdict(list)
        for key in names:
            stored[pg_text(key)].append(key)
        pending = {k: names[keys[0]] for k, keys in stored.items()}
        ids: dict[str, int] = {}
        for _ in range(5):
            keys = list(pending)
            self._round_trips[kind] += 1
            rows = await conn.fetch(
                self._sql[kind],
                library_id,
                keys,
                [pg_text(pending[k].name) for k in keys],
                [pg_text_or_none(pending[k].sort_name) for k in keys],
            )
            for row in rows:
                for key in stored[row["name_key"]]:
                    ids[key] = row["id"]
                pending.pop(row["name_key"], None)
            if not pending:
                return ids
        raise RuntimeError(f"could not resolve {len(pending)} {kind} after retries")

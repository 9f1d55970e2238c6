"""What the catalogue already knows about a library's files, and bulk status changes."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType
from typing import Any

import asyncpg

from shelfscan.catalogue.pathcodec import from_db, to_db
from shelfscan.errors import one_line
from shelfscan.pgtext import pg_text


@dataclass(frozen=True, slots=True)
class KnownFile:
    id: int
    book_id: int
    root_id: int
    path: str
    size: int
    mtime_ns: int
    inode: int | None
    status: str
    device: int | None = None
    fingerprint: str | None = None


_KNOWN_COLUMNS = (
    "id, book_id, root_id, path, path_raw, size, mtime_ns, inode, status, device, fingerprint"
)


_FETCH_BATCH = 5000
_NULL = -(2**63)  # None in a bigint column (inode, device): no real value is this
_STATUSES = ("ok", "missing", "error")
_STATUS_CODES = {name: code for code, name in enumerate(_STATUSES)}
_MISSING, _ERROR = _STATUS_CODES["missing"], _STATUS_CODES["error"]
_NO_PATHS: Mapping[str, int] = MappingProxyType({})


class Verdict(IntEnum):
    """The diff's decision for a walked file the catalogue already holds."""

    UNCHANGED = 0
    CHANGED = 1  # read again: its stat differs, or its last read failed
    RESTORED = 2  # unchanged, but the catalogue had it missing


class KnownFiles(Mapping[tuple[int, str], KnownFile]):
    """What the catalogue holds about many files, by (root id, path), stored in columns.

    A library-wide scan needs a view of every file (a million in a big library),
    and a `KnownFile` each cost ~490 bytes with its key tuple and number objects.
    Here a file costs its path string (which the walk then shares, see
    `walk_root`), one dict entry and 50 bytes of arrays: a `KnownFile` is made
    only when one is asked for (`get`, `at`), and the diff asks only for files
    something happens to. Read-only once built.
    """

    __slots__ = (
        "_book",
        "_device",
        "_fingerprint",
        "_id",
        "_index",
        "_inode",
        "_mtime",
        "_paths",
        "_root",
        "_size",
        "_status",
    )

    def __init__(self) -> None:
        self._index: dict[int, dict[str, int]] = {}  # root id -> path -> row
        self._root = array("q")
        self._id = array("q")
        self._book = array("q")
        self._size = array("q")
        self._mtime = array("q")
        self._inode = array("q")
        self._device = array("q")
        self._status = bytearray()
        self._fingerprint: dict[int, str] = {}  # row -> fingerprint, for rows that have one
        self._paths: list[str] = []

    @classmethod
    def of(cls, files: Iterable[KnownFile]) -> KnownFiles:
        known = cls()
        for k in files:
            known.add(
                k.id,
                k.book_id,
                k.root_id,
                k.path,
                k.size,
                k.mtime_ns,
                k.inode,
                k.status,
                k.device,
                k.fingerprint,
            )
        return known

    def add(
        self,
        id: int,
        book_id: int,
        root_id: int,
        path: str,
        size: int,
        mtime_ns: int,
        inode: int | None,
        status: str,
        device: int | None,
        fingerprint: str | None,
    ) -> None:
        row = len(self._id)
        by_path = self._index.get(root_id)
        if by_path is None:
            by_path = self._index[root_id] = {}
        by_path[path] = row
        self._paths.append(path)
        self._root.append(root_id)
        self._id.append(id)
        self._book.append(book_id)
        self._size.append(size)
        self._mtime.append(mtime_ns)
        self._inode.append(_NULL if inode is None else inode)
        self._device.append(_NULL if device is None else device)
        self._status.append(_STATUS_CODES[status])
        if fingerprint is not None:
            self._fingerprint[row] = fingerprint

    def add_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """A batch of rows in `_KNOWN_COLUMNS` order, stored a column at a time.

        One comprehension per column instead of a ten-argument `add` call per row:
        the catalogue's view is loaded on every scan, and per row it was the larger
        part of a no-change rescan's time after the walk.
        """
        if not rows:
            return
        start = len(self._id)
        paths = [r[3] if r[4] is None else from_db(r[3], r[4]) for r in rows]
        roots = [r[2] for r in rows]
        self._paths.extend(paths)
        self._root.extend(roots)
        self._id.extend([r[0] for r in rows])
        self._book.extend([r[1] for r in rows])
        self._size.extend([r[5] for r in rows])
        self._mtime.extend([r[6] for r in rows])
        self._inode.extend([_NULL if r[7] is None else r[7] for r in rows])
        self._device.extend([_NULL if r[9] is None else r[9] for r in rows])
        self._status.extend([_STATUS_CODES[r[8]] for r in rows])
        self._fingerprint.update(
            (row, r[10]) for row, r in enumerate(rows, start) if r[10] is not None
        )
        if roots.count(roots[0]) == len(roots):  # one root: the usual library
            by_path = self._index.setdefault(roots[0], {})
            by_path.update(zip(paths, range(start, start + len(paths)), strict=True))
            return
        for row, (root_id, path) in enumerate(zip(roots, paths, strict=True), start):
            self._index.setdefault(root_id, {})[path] = row

    def paths_of(self, root_id: int) -> Mapping[str, int]:
        """Path -> row for one root (the diff looks a walk's files up in it directly)."""
        return self._index.get(root_id, _NO_PATHS)

    def verdict(self, row: int, size: int, mtime_ns: int, inode: int) -> Verdict:
        """What the diff does with a walked file the catalogue holds at `row`."""
        known_inode = self._inode[row]
        if not (
            self._size[row] == size
            and self._mtime[row] == mtime_ns
            and known_inode in (_NULL, inode)
        ):
            return Verdict.CHANGED
        status = self._status[row]
        if status == _MISSING:
            return Verdict.RESTORED
        if status == _ERROR:
            # The cause may have passed (permissions fixed, a mount back, a copy completed
            # in place): read it again. An empty file stays unreadable until its size changes.
            return Verdict.CHANGED if size else Verdict.UNCHANGED
        return Verdict.UNCHANGED

    def row(self, root_id: int, path: str) -> int | None:
        """The row of a file (an index for `at`), or None when the catalogue does not hold it."""
        by_path = self._index.get(root_id)
        return None if by_path is None else by_path.get(path)

    def at(self, row: int) -> KnownFile:
        inode, device = self._inode[row], self._device[row]
        return KnownFile(
            self._id[row],
            self._book[row],
            self._root[row],
            self._paths[row],
            self._size[row],
            self._mtime[row],
            None if inode == _NULL else inode,
            _STATUSES[self._status[row]],
            None if device == _NULL else device,
            self._fingerprint.get(row),
        )

    def book_of(self, row: int) -> int:
        return self._book[row]

    def path_of(self, root_id: int, path: str) -> str | None:
        """The catalogue's own string for this path (for the walk to share), or None."""
        row = self.row(root_id, path)
        return None if row is None else self._paths[row]

    def held(self, root_id: int) -> int:
        """How many files of a root the catalogue holds that are not missing."""
        missing = _STATUSES.index("missing")
        return sum(
            1
            for r, st in zip(self._root, self._status, strict=True)
            if r == root_id and st != missing
        )

    def __getitem__(self, key: tuple[int, str]) -> KnownFile:
        row = self.row(*key)
        if row is None:
            raise KeyError(key)
        return self.at(row)

    # Mapping's own get and `in` go through __getitem__ and a KeyError for every file the
    # catalogue lacks: on a first scan, every file (~3 us each at 100,000 files).
    def get(self, key: tuple[int, str], default: Any = None) -> Any:
        row = self.row(*key)
        return default if row is None else self.at(row)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, tuple) and len(key) == 2 and self.row(*key) is not None

    def __iter__(self) -> Iterator[tuple[int, str]]:
        return zip(self._root, self._paths, strict=True)

    def __len__(self) -> int:
        return len(self._id)


class _KnownRows:
    """Rows of `shelfscan.files` read into a `KnownFiles`, a batch at a time."""

    @staticmethod
    async def fetch(pool: asyncpg.Pool, query: str, *args: object) -> KnownFiles:
        """Run `query` through a cursor, `_FETCH_BATCH` rows at a time.

        `pool.fetch` would hold every row as a Record until the last one arrived,
        beside what is built from them: at 200,000 files that doubled the memory of
        this step. A batch's Records are dropped as soon as they are stored.
        """
        known = KnownFiles()
        async with pool.acquire() as conn, conn.transaction():
            cursor = await conn.cursor(query, *args)
            while rows := await cursor.fetch(_FETCH_BATCH):
                known.add_rows(rows)
        return known


async def load_known_files(pool: asyncpg.Pool, library_id: int) -> KnownFiles:
    """One bulk read: the diff must not cost a round trip per file."""
    return await _KnownRows.fetch(
        pool, f"SELECT {_KNOWN_COLUMNS} FROM shelfscan.files WHERE library_id = $1", library_id
    )


async def mark_missing(pool: asyncpg.Pool, library_id: int, file_ids: Sequence[int]) -> list[int]:
    """Files that vanished are marked, never deleted: a remount must not wipe a library.

    Returns the ids of the books that went missing with them (all their files gone).
    """
    if not file_ids:
        return []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE shelfscan.files SET status = 'missing', missing_since = now(), updated_at = now()
            WHERE id = ANY($1::bigint[]) AND status <> 'missing'
            """,
            list(file_ids),
        )
        rows = await conn.fetch(
            """
            UPDATE shelfscan.books b SET status = 'missing', updated_at = now()
            WHERE b.library_id = $1 AND b.status <> 'missing'
              AND b.id IN (SELECT book_id FROM shelfscan.files WHERE id = ANY($2::bigint[]))
              AND NOT EXISTS (SELECT 1 FROM shelfscan.files f
                              WHERE f.book_id = b.id AND f.status <> 'missing')
            RETURNING b.id
            """,
            library_id,
            list(file_ids),
        )
    return [r["id"] for r in rows]


async def mark_restored(pool: asyncpg.Pool, file_ids: Sequence[int]) -> list[int]:
    """Unchanged files that had been missing come back with their book (whose id is returned)."""
    if not file_ids:
        return []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE shelfscan.files SET status = CASE WHEN scan_error IS NULL THEN 'ok' ELSE 'error' END,
                missing_since = NULL, updated_at = now()
            WHERE id = ANY($1::bigint[])
            """,
            list(file_ids),
        )
        rows = await conn.fetch(
            """
            UPDATE shelfscan.books SET status = 'ok', updated_at = now()
            WHERE status = 'missing'
              AND id IN (SELECT book_id FROM shelfscan.files WHERE id = ANY($1::bigint[]))
            RETURNING id
            """,
            list(file_ids),
        )
    return [r["id"] for r in rows]


async def record_file_errors(
    pool: asyncpg.Pool, errors: Sequence[tuple[int, str, int, int, int | None]]
) -> None:
    """A known file that no longer parses keeps its book and metadata; the file carries the reason.

    `errors` holds (file id, reason, size, mtime_ns, inode).
    """
    if not errors:
        return
    await pool.executemany(
        """
        UPDATE shelfscan.files SET status = 'error', scan_error = $2, size = $3, mtime_ns = $4,
            inode = $5, missing_since = NULL, updated_at = now()
        WHERE id = $1
        """,
        [(fid, pg_text(one_line(reason)), *stat) for fid, reason, *stat in errors],
    )


async def load_known_paths(pool: asyncpg.Pool, root_id: int, paths: Sequence[str]) -> KnownFiles:
    """The catalogue's rows for a few thousand named files (a part of a split scan)."""
    return await _KnownRows.fetch(
        pool,
        f"SELECT {_KNOWN_COLUMNS} FROM shelfscan.files WHERE root_id = $1 AND path = ANY($2::text[])",
        root_id,
        [to_db(p)[0] for p in paths],
    )


async def load_known_under(pool: asyncpg.Pool, root_id: int, folders: Sequence[str]) -> KnownFiles:
    """The catalogue's files below some folders of a root (a targeted scan)."""
    if "" in folders:
        return await _KnownRows.fetch(
            pool, f"SELECT {_KNOWN_COLUMNS} FROM shelfscan.files WHERE root_id = $1", root_id
        )
    prefixes = [to_db(f)[0].rstrip("/") + "/" for f in folders]
    return await _KnownRows.fetch(
        pool,
        f"""SELECT {_KNOWN_COLUMNS} FROM shelfscan.files
            WHERE root_id = $1 AND (path = ANY($2::text[]) OR path LIKE ANY($3::text[]))""",
        root_id,
        [p.rstrip("/") for p in prefixes],
        [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for p in prefixes],
    )


@dataclass(frozen=True, slots=True)
class Move:
    file_id: int
    book_id: int
    root_id: int
    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int


async def apply_moves(pool: asyncpg.Pool, moves: Sequence[Move]) -> list[int]:
    """A moved or renamed file keeps its row, its book and every edit; only where it is changes.

    Returns the ids of books that had gone missing and are back with the move.
    """
    if not moves:
        return []
    db_paths = [to_db(m.path) for m in moves]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE shelfscan.files f SET root_id = t.root_id, path = t.path, path_raw = t.path_raw,
                inode = t.inode, device = t.device, size = t.size, mtime_ns = t.mtime_ns,
                status = CASE WHEN f.scan_error IS NULL THEN 'ok' ELSE 'error' END,
                missing_since = NULL, updated_at = now()
            FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bytea[], $5::bigint[], $6::bigint[],
                        $7::bigint[], $8::bigint[])
                 AS t(id, root_id, path, path_raw, inode, device, size, mtime_ns)
            WHERE f.id = t.id
            """,
            [m.file_id for m in moves],
            [m.root_id for m in moves],
            [p for p, _ in db_paths],
            [r for _, r in db_paths],
            [m.inode for m in moves],
            [m.device for m in moves],
            [m.size for m in moves],
            [m.mtime_ns for m in moves],
        )
        rows = await conn.fetch(
            "UPDATE shelfscan.books SET status = 'ok', updated_at = now() "
            "WHERE status = 'missing' AND id = ANY($1::bigint[]) RETURNING id",
            list({m.book_id for m in moves}),
        )
    return [r["id"] for r in rows]


async def purge_missing(
    pool: asyncpg.Pool, older_than_s: float, library_id: int | None = None
) -> tuple[int, int]:
    """The explicit clean-up step: files missing for longer than the grace period, then empty books."""
    async with pool.acquire() as conn, conn.transaction():
        gone = await conn.fetch(
            """
            DELETE FROM shelfscan.files
            WHERE status = 'missing' AND missing_since < now() - make_interval(secs => $1)
              AND ($2::bigint IS NULL OR library_id = $2)
            RETURNING book_id
            """,
            older_than_s,
            library_id,
        )
        books: str = await conn.execute(
            """
            DELETE FROM shelfscan.books b WHERE b.id = ANY($1::bigint[])
              AND NOT EXISTS (SELECT 1 FROM shelfscan.files f WHERE f.book_id = b.id)
            """,
            list({r["book_id"] for r in gone}),
        )
    return len(gone), int(books.split()[-1])


@dataclass(frozen=True, slots=True)
class KnownSidecar:
    id: int
    root_id: int
    path: str
    size: int
    mtime_ns: int


async def load_known_sidecars(
    pool: asyncpg.Pool, library_id: int
) -> dict[tuple[int, str], KnownSidecar]:
    rows = await pool.fetch(
        "SELECT id, root_id, path, size, mtime_ns FROM shelfscan.sidecars WHERE library_id = $1",
        library_id,
    )
    return {(r["root_id"], r["path"]): KnownSidecar(*r) for r in rows}


async def save_sidecars(
    pool: asyncpg.Pool,
    library_id: int,
    seen: Sequence[tuple[int, str, int, int]],
    gone: Sequence[int],
) -> None:
    """Remember sidecar sizes and mtimes, so that only an edit triggers a refresh."""
    if seen:
        db_paths = [to_db(s[1]) for s in seen]
        await pool.execute(
            """
            INSERT INTO shelfscan.sidecars (library_id, root_id, path, path_raw, size, mtime_ns)
            SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bytea[], $5::bigint[], $6::bigint[])
            ON CONFLICT (root_id, path) DO UPDATE SET size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns
            """,
            library_id,
            [s[0] for s in seen],
            [p for p, _ in db_paths],
            [r for _, r in db_paths],
            [s[2] for s in seen],
            [s[3] for s in seen],
        )
    if gone:
        await pool.execute(
            "DELETE FROM shelfscan.sidecars WHERE id = ANY($1::bigint[])", list(gone)
        )


async def books_with_path_fields(pool: asyncpg.Pool, book_ids: Sequence[int]) -> frozenset[int]:
    """Of `book_ids`, the books holding a field read off the path (`field_sources` value `path`).

    When such a book's file moves, what the old path said is stale, so the scan
    re-reads it from its new place; a book whose fields all came from tags or
    sidecars costs nothing more than the row update. Reads only: planning stays pure.
    """
    if not book_ids:
        return frozenset()
    rows = await pool.fetch(
        """
        SELECT b.id FROM shelfscan.books b
        WHERE b.id = ANY($1::bigint[])
          AND EXISTS (SELECT 1 FROM jsonb_each_text(b.field_sources) s WHERE s.value = 'path')
        """,
        list(book_ids),
    )
    return frozenset(r["id"] for r in rows)

"""Cover images, stored once per content hash in append-only pack files, outside the library.

One file per cover was the obvious design, but creating a file costs ~0.2-0.5 ms
of kernel CPU on the machines we measure (appending 50 KB costs ~16 us), which
alone capped a first scan near 1,000 books/s. So each parse chunk appends its
covers to one pack file; `shelfscan.covers` records (pack, offset, size) for
each sha256, and `read_cover` (or `shelfscan cover SHA256`) gets the bytes back.

Stored once, on disk too: a re-parsed book whose cover the catalogue already holds
(its hash is passed in as `known`) writes no bytes; `compact` rewrites packs whose
bytes are mostly unreferenced so the folder stays near the referenced size.

A full covers disk stops nothing: `store` raises `CoverDiskFull` for that one cover
(the caller keeps the book and marks the cover as still to be read), and a pack
whose final flush fails is reported by `close` so the caller can drop the covers
that pointed into it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import asyncpg
import structlog

from shelfscan.errors import ShelfscanError, one_line
from shelfscan.formats.images import sniff_image
from shelfscan.formats.records import pickled_by_fields

PACKS = "packs"
PACK_SUFFIX = ".pack"
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class CoverDiskFull(ShelfscanError, OSError):
    """The covers folder has no room (ENOSPC/EDQUOT): this cover is not stored, the book is.

    An OSError too, so code that guards cover writes with `except OSError` keeps working."""


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class StoredCover:
    sha256: str
    mime: str | None
    width: int | None
    height: int | None
    size: int
    pack: str | None  # file name under <covers dir>/packs/; None: already stored (a known hash)
    offset: int | None


class PackWriter(Protocol):
    """What `CoverPack` needs of a pack file: the seam a full-disk test replaces."""

    def write(self, data: memoryview, /) -> int | None: ...
    def truncate(self, size: int, /) -> int: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...


def open_pack_file(path: Path) -> PackWriter:
    """Unbuffered: a full disk shows up at the `store` of the cover that did not fit,
    not later in a buffered flush that would take every cover of the chunk with it."""
    return open(path, "ab", buffering=0)


def _sync(handle: PackWriter) -> None:
    os.fdatasync(handle.fileno())


@dataclass(slots=True)
class CoverPack:
    """The pack one parse chunk appends to; created on the first cover, made durable on close."""

    covers_dir: Path
    known: frozenset[str] = frozenset()  # hashes the catalogue already has bytes for
    opener: Callable[[Path], PackWriter] = open_pack_file
    sync: Callable[[PackWriter], None] = _sync
    _file: PackWriter | None = None
    _name: str = ""
    _end: int = 0
    _stored: dict[str, StoredCover] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self._name

    def store(self, data: bytes, declared_mime: str | None = None) -> StoredCover:
        """Append one cover; raises CoverDiskFull (the pack stays consistent) or OSError."""
        sha = hashlib.sha256(data).hexdigest()
        known = self._stored.get(sha)
        if known is not None:
            return known  # the same cover twice in a chunk (parts of one audiobook) is kept once
        if sha in self.known:
            # The catalogue has these bytes: the writer keeps its row (first copy wins).
            return StoredCover(sha, declared_mime, None, None, len(data), None, None)
        offset = self._end
        try:
            if self._file is None:
                folder = self.covers_dir / PACKS
                folder.mkdir(parents=True, exist_ok=True)
                self._name = f"{uuid.uuid4().hex}{PACK_SUFFIX}"
                self._file = self.opener(folder / self._name)
                self._end = offset = 0
            view = memoryview(data)
            while view:
                written = self._file.write(view)
                if not written:
                    raise OSError(errno.ENOSPC, "short write to the cover pack")
                view = view[written:]
        except OSError as exc:
            # Cut the partial cover off so the pack holds only whole covers.
            if self._file is not None:
                with contextlib.suppress(OSError):
                    self._file.truncate(offset)
            if is_disk_full(exc) and not isinstance(exc, CoverDiskFull):
                raise CoverDiskFull(exc.errno, f"covers folder full ({exc.strerror})") from exc
            raise
        self._end = offset + len(data)
        sniffed = sniff_image(data)
        mime, width, height = sniffed if sniffed else (declared_mime, None, None)
        stored = StoredCover(sha, mime, width, height, len(data), self._name, offset)
        self._stored[sha] = stored
        return stored

    def close(self) -> None:
        """Flush to disk before the rows that point into the pack are committed.

        On failure the pack is removed and the error raised: the caller must drop every
        cover stored into it (`self.name`), since none of them is known to be on disk."""
        if self._file is None:
            return
        handle, self._file = self._file, None
        try:
            self.sync(handle)
        except OSError:
            with contextlib.suppress(OSError):
                handle.close()
            with contextlib.suppress(OSError):
                os.unlink(self.covers_dir / PACKS / self._name)
            raise
        handle.close()
        if self._end == 0:  # every cover failed: leave no empty pack behind
            with contextlib.suppress(OSError):
                os.unlink(self.covers_dir / PACKS / self._name)


def read_cover(covers_dir: Path, pack: str, offset: int, size: int) -> bytes:
    """A cover's bytes from its pack (blocking: for worker threads and the bench)."""
    with open(_pack_path(covers_dir, pack), "rb") as fh:
        fh.seek(offset)
        return _whole(fh.read(size), size, pack)


async def read_cover_async(covers_dir: Path, pack: str, offset: int, size: int) -> bytes:
    """`read_cover` for the event loop: the reads run in aiofiles' thread, not on the loop."""
    import aiofiles  # here, not at the top: parse processes import this module too

    async with aiofiles.open(_pack_path(covers_dir, pack), "rb") as fh:
        await fh.seek(offset)
        return _whole(await fh.read(size), size, pack)


def _pack_path(covers_dir: Path, pack: str) -> Path:
    if "/" in pack or pack.startswith("."):
        raise ValueError(f"not a pack name: {pack!r}")
    return covers_dir / PACKS / pack


def _whole(data: bytes, size: int, pack: str) -> bytes:
    if len(data) != size:
        raise ValueError(f"pack {pack} is shorter than the catalogue says")
    return data


async def known_cover_hashes(
    conn: asyncpg.Pool | asyncpg.Connection, file_ids: Iterable[int]
) -> dict[int, tuple[str, ...]]:
    """file id -> hashes of the covers its row and its book's row point at (bytes on disk).

    Asked only for files the catalogue already knows, once per chunk of a rescan, so a
    re-parsed book with an unchanged cover writes nothing to the packs."""
    ids = list(file_ids)
    if not ids:
        return {}
    rows = await conn.fetch(
        """
        SELECT f.id, array_remove(ARRAY[fc.sha256, bc.sha256], NULL) AS shas
        FROM shelfscan.files f
        LEFT JOIN shelfscan.covers fc ON fc.id = f.cover_id AND fc.pack IS NOT NULL
        LEFT JOIN shelfscan.books b ON b.id = f.book_id
        LEFT JOIN shelfscan.covers bc ON bc.id = b.cover_id AND bc.pack IS NOT NULL
        WHERE f.id = ANY($1::bigint[])
        """,
        ids,
    )
    return {int(r["id"]): tuple(r["shas"]) for r in rows if r["shas"]}


# --- compaction -----------------------------------------------------------------------------------

# A cover row is live while a book or a file points at it.
_LIVE = """(EXISTS (SELECT 1 FROM shelfscan.books b WHERE b.cover_id = c.id)
         OR EXISTS (SELECT 1 FROM shelfscan.files f WHERE f.cover_id = c.id))"""

DEFAULT_GRACE_S = 3600.0
MIN_LIVE_SHARE = 0.95  # packs below this are rewritten: the folder stays <= ~1.05x referenced


@dataclass(frozen=True, slots=True)
class CompactResult:
    packs_before: int
    bytes_before: int
    referenced_bytes: int
    packs_rewritten: int
    covers_copied: int
    packs_deleted: int
    bytes_after: int

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def _packs_on_disk(folder: Path) -> dict[str, tuple[int, float]]:
    """pack name -> (size, mtime)."""
    found: dict[str, tuple[int, float]] = {}
    with contextlib.suppress(FileNotFoundError), os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.endswith(PACK_SUFFIX) and entry.is_file(follow_symlinks=False):
                st = entry.stat(follow_symlinks=False)
                found[entry.name] = (st.st_size, st.st_mtime)
    return found


def _copy_covers(
    folder: Path, rows: list[tuple[int, str, str, int, int]]
) -> tuple[str, list[tuple[int, int]]]:
    """Copy (id, sha256, pack, offset, size) into a new durable pack: (its name, [(id, offset)])."""
    name = f"{uuid.uuid4().hex}{PACK_SUFFIX}"
    placed: list[tuple[int, int]] = []
    handles: dict[str, BinaryIO] = {}
    out = open(folder / name, "xb")  # noqa: SIM115 - closed below
    try:
        end = 0
        for cover_id, sha, pack, offset, size in rows:
            src = handles.get(pack)
            if src is None:
                src = handles[pack] = open(folder / pack, "rb")  # noqa: SIM115 - closed below
            data = os.pread(src.fileno(), size, offset)
            if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
                continue  # damaged bytes are not carried over; the row loses its pack
            out.write(data)
            placed.append((cover_id, end))
            end += size
        out.flush()
        os.fdatasync(out.fileno())
    except BaseException:
        out.close()
        with contextlib.suppress(OSError):
            os.unlink(folder / name)
        raise
    finally:
        for handle in handles.values():
            handle.close()
    out.close()
    return name, placed


def _unlink_all(folder: Path, names: Iterable[str]) -> int:
    deleted = 0
    for name in names:
        try:
            os.unlink(folder / name)
            deleted += 1
        except FileNotFoundError:
            deleted += 1
    return deleted


async def compact(
    pool: asyncpg.Pool,
    covers_dir: Path,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    min_live_share: float = MIN_LIVE_SHARE,
) -> CompactResult:
    """Rewrite mostly-dead packs so the folder holds little more than the referenced bytes.

    Safe while scans run: packs younger than `grace_s` are left alone (a scan writes
    its pack before it commits the rows pointing into it); the live covers of the
    chosen packs are copied to a new pack and their rows swapped in one transaction
    that holds their row locks (a writer linking one of them waits, then sees the
    new pack); the old packs are deleted only once they have been retired for
    `grace_s`, so a reader that looked a row up just before the swap can still open
    the old file. Rows no book or file points at lose their pack (a later scan that
    meets the same cover stores it again)."""
    folder = covers_dir / PACKS
    log = structlog.get_logger("shelfscan.covers")
    on_disk = await asyncio.to_thread(_packs_on_disk, folder)
    bytes_before = sum(size for size, _ in on_disk.values())
    async with pool.acquire() as conn:
        # Retired long enough: nobody can still be reading them.
        expired = [
            r["pack"]
            for r in await conn.fetch(
                "SELECT pack FROM shelfscan.cover_packs_retired "
                "WHERE retired_at <= now() - make_interval(secs => $1)",
                grace_s,
            )
        ]
        deleted = await asyncio.to_thread(_unlink_all, folder, expired)
        if expired:
            await conn.execute(
                "DELETE FROM shelfscan.cover_packs_retired WHERE pack = ANY($1::text[])", expired
            )
        retired = {
            r["pack"] for r in await conn.fetch("SELECT pack FROM shelfscan.cover_packs_retired")
        }
        live = {
            r["pack"]: int(r["bytes"])
            for r in await conn.fetch(
                f"SELECT c.pack, sum(c.size) AS bytes FROM shelfscan.covers c "
                f"WHERE c.pack IS NOT NULL AND {_LIVE} GROUP BY c.pack"
            )
        }
        now = time.time()
        chosen = sorted(
            name
            for name, (size, mtime) in on_disk.items()
            if name not in retired
            and name not in expired
            and now - mtime >= grace_s
            and live.get(name, 0) < min_live_share * size
        )
        copied = 0
        if chosen:
            copied = await _swap(conn, folder, chosen)
        if grace_s <= 0 and chosen:
            deleted += await asyncio.to_thread(_unlink_all, folder, chosen)
            await conn.execute(
                "DELETE FROM shelfscan.cover_packs_retired WHERE pack = ANY($1::text[])", chosen
            )
        referenced = int(
            await conn.fetchval(
                f"SELECT coalesce(sum(c.size), 0) FROM shelfscan.covers c "
                f"WHERE c.pack IS NOT NULL AND {_LIVE}"
            )
        )
    after = await asyncio.to_thread(_packs_on_disk, folder)
    result = CompactResult(
        packs_before=len(on_disk),
        bytes_before=bytes_before,
        referenced_bytes=referenced,
        packs_rewritten=len(chosen),
        covers_copied=copied,
        packs_deleted=deleted,
        bytes_after=sum(size for size, _ in after.values()),
    )
    log.info("covers_compacted", **result.as_dict())
    return result


async def _swap(conn: asyncpg.Connection, folder: Path, packs: list[str]) -> int:
    """Copy the live covers of `packs` to a new pack and point their rows at it, atomically."""
    async with conn.transaction():
        # Lock every row of these packs: a writer linking one (ON CONFLICT DO UPDATE locks
        # it) waits for us, and we wait for it, so "live" below is decided on committed links.
        await conn.execute(
            "SELECT id FROM shelfscan.covers WHERE pack = ANY($1::text[]) ORDER BY id FOR UPDATE",
            packs,
        )
        rows = await conn.fetch(
            f"SELECT c.id, c.sha256, c.pack, c.pack_offset, c.size FROM shelfscan.covers c "
            f"WHERE c.pack = ANY($1::text[]) AND {_LIVE} ORDER BY c.pack, c.pack_offset",
            packs,
        )
        items = [(r["id"], r["sha256"], r["pack"], r["pack_offset"], r["size"]) for r in rows]
        new_pack, placed = (
            await asyncio.to_thread(_copy_covers, folder, items) if items else ("", [])
        )
        try:
            if placed:
                await conn.execute(
                    """
                    UPDATE shelfscan.covers c SET pack = $1, pack_offset = u.off
                    FROM unnest($2::bigint[], $3::bigint[]) AS u(id, off) WHERE c.id = u.id
                    """,
                    new_pack,
                    [p[0] for p in placed],
                    [p[1] for p in placed],
                )
            # What was not carried over (unreferenced, or damaged) no longer has bytes.
            await conn.execute(
                "UPDATE shelfscan.covers SET pack = NULL, pack_offset = NULL "
                "WHERE pack = ANY($1::text[])",
                packs,
            )
            await conn.execute(
                "INSERT INTO shelfscan.cover_packs_retired (pack) SELECT unnest($1::text[]) "
                "ON CONFLICT DO NOTHING",
                packs,
            )
        except BaseException:
            if new_pack:
                with contextlib.suppress(OSError):
                    os.unlink(folder / new_pack)
            raise
    return len(placed)


async def compaction_loop(
    pool: asyncpg.Pool,
    covers_dir: Path,
    interval_s: float,
    stopping: asyncio.Event,
    *,
    grace_s: float = DEFAULT_GRACE_S,
) -> None:
    """The daemon's schedule: compact every `interval_s`; a failure is logged and retried."""
    log = structlog.get_logger("shelfscan.covers")
    while not stopping.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval_s)
            return
        try:
            await compact(pool, covers_dir, grace_s=grace_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a background loop must not die silently
            log.error("covers_compaction_failed", reason=one_line(exc))


async def compact_command(url: str, covers_dir: Path, grace_s: float, as_json: bool) -> int:
    """`shelfscan covers compact`: one compaction, its figures on stdout."""
    import json

    from shelfscan.db.connect import open_pool
    from shelfscan.db.migrate import migrate

    await migrate(url)
    async with open_pool(url, max_size=2) as pool:
        result = await compact(pool, covers_dir, grace_s=grace_s)
    if as_json:
        print(json.dumps(result.as_dict()))
    else:
        print(
            f"{result.packs_rewritten} of {result.packs_before} packs rewritten, "
            f"{result.covers_copied} covers copied, {result.packs_deleted} packs deleted; "
            f"{result.bytes_before:,} -> {result.bytes_after:,} bytes on disk, "
            f"{result.referenced_bytes:,} referenced"
        )
    return 0

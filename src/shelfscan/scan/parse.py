"""Parse stage: runs inside the parse executor (a process, by default).

It takes a chunk of files so that one hand-off costs ~50 parses, not one:
per-file futures on this 2-core machine lose the whole gain of a second core.
Cover bytes are stored here, in the worker, so they never cross the process
boundary; only their hash and header facts travel back.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import xxhash

from shelfscan.covers import CoverDiskFull, CoverPack, StoredCover
from shelfscan.errors import one_line
from shelfscan.formats import sidecars
from shelfscan.formats.records import Metadata, ParseError, pickled_by_fields
from shelfscan.formats.registry import check_magic, format_for_name

MAX_SIDECAR_BYTES = 4 * 1024 * 1024
MAX_SIDECAR_COVER_BYTES = 32 * 1024 * 1024
# Recorded as a file's mtime when its cover could not be stored (a full covers disk): it
# matches no real mtime, so the next scan reads the file again and picks the cover up.
COVER_PENDING_MTIME_NS = -1


@dataclass(frozen=True, slots=True)
class ParseTask:
    index: int
    path: str  # absolute
    size: int
    mtime_ns: int


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class ParseOutcome:
    index: int
    metadata: Metadata | None = None  # with cover bytes removed
    cover: StoredCover | None = None
    error: str | None = None
    vanished: bool = False
    changed: bool = False  # the file changed while it was read; do not store what was read
    size: int = 0
    mtime_ns: int = 0
    inode: int = 0
    fingerprint: str | None = None
    elapsed_s: float = 0.0
    cover_error: str | None = None  # the book is kept; its cover waits for a later scan


@dataclass(frozen=True, slots=True)
class UnitTask:
    """The files of one book folder (or one lone file) and the sidecars beside them."""

    index: int
    files: tuple[ParseTask, ...]
    sidecars: tuple[str, ...] = ()  # absolute paths
    known_covers: tuple[str, ...] = ()  # sha256 the catalogue already stores for these files


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SidecarData:
    opf: Metadata | None = None
    abs_json: Metadata | None = None
    description: str | None = None
    narrators: tuple[str, ...] = ()
    cover: StoredCover | None = None
    problems: tuple[tuple[str, str], ...] = ()  # (path, reason)
    cover_error: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class UnitOutcome:
    index: int
    files: tuple[ParseOutcome, ...]
    sidecars: SidecarData | None = None


def parse_units(
    units: list[UnitTask], covers_dir: str, make_pack: Callable[..., CoverPack] = CoverPack
) -> list[UnitOutcome]:
    # Worker processes do not inherit the parent's logging set-up; pypdf warns about every
    # sloppy PDF, which the scan already reports as it sees fit.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    pack = make_pack(Path(covers_dir), known=frozenset(s for u in units for s in u.known_covers))
    outcomes = [_unit_outcome(unit, pack) for unit in units]
    try:
        pack.close()
    except OSError as exc:  # the pack never reached the disk: none of its covers is stored
        reason = f"cover not stored: {exc.strerror or exc}"
        return [_drop_covers_in(o, pack.name, reason) for o in outcomes]
    return outcomes


def _unit_outcome(unit: UnitTask, pack: CoverPack) -> UnitOutcome:
    render = not _has_cover_sidecar(unit)
    files = tuple(parse_one(task, pack, render_cover=render) for task in unit.files)
    sidecars = read_sidecars(unit.sidecars, pack) if unit.sidecars else None
    if sidecars is not None and sidecars.cover_error:
        # The folder's cover image did not fit: read the book's files again next scan.
        files = tuple(_cover_pending(f, sidecars.cover_error) for f in files)
    return UnitOutcome(unit.index, files, sidecars)


def _cover_pending(outcome: ParseOutcome, reason: str) -> ParseOutcome:
    if outcome.metadata is None:
        return outcome
    return dataclasses.replace(
        outcome,
        cover=None,
        cover_error=outcome.cover_error or reason,
        mtime_ns=COVER_PENDING_MTIME_NS,
    )


def _drop_covers_in(outcome: UnitOutcome, pack: str, reason: str) -> UnitOutcome:
    sidecars = outcome.sidecars
    lost = sidecars is not None and sidecars.cover is not None and sidecars.cover.pack == pack
    if sidecars is not None and lost:
        sidecars = dataclasses.replace(sidecars, cover=None, cover_error=reason)
    files = tuple(
        _cover_pending(f, reason) if lost or (f.cover is not None and f.cover.pack == pack) else f
        for f in outcome.files
    )
    return UnitOutcome(outcome.index, files, sidecars)


def read_sidecars(paths: tuple[str, ...], pack: CoverPack) -> SidecarData:
    """Sidecars are optional extras: a broken one is reported and skipped, never fatal."""
    found: dict[str, object] = {}
    problems: list[tuple[str, str]] = []
    for path in sorted(paths, key=_sidecar_rank):
        name = os.path.basename(path).lower()
        if name.endswith(sidecars.CUE_SUFFIX):
            continue  # tracked so an edit re-reads the folder; the FLAC parser reads it
        try:
            if _is_cover_sidecar(name):
                if "cover" in found:
                    continue
                data = _read_capped(path, MAX_SIDECAR_COVER_BYTES)
                try:
                    found["cover"] = pack.store(data)
                except CoverDiskFull as exc:
                    found["cover_error"] = f"cover not stored: {exc.strerror or exc}"
                continue
            data = _read_capped(path, MAX_SIDECAR_BYTES)
            if name == "metadata.opf":
                found["opf"] = sidecars.parse_metadata_opf(data)
            elif name == "metadata.json":
                found["abs_json"] = sidecars.parse_abs_metadata_json(data)
            elif name == "desc.txt":
                found["description"] = sidecars.parse_desc_txt(data)
            elif name == "reader.txt":
                found["narrators"] = sidecars.parse_reader_txt(data)
        except FileNotFoundError:
            continue
        except (ParseError, OSError, ValueError) as exc:
            problems.append((path, one_line(exc)))
    return SidecarData(problems=tuple(problems), **found)  # type: ignore[arg-type]


def _is_cover_sidecar(name: str) -> bool:
    return name.startswith(("cover.", "folder."))


def _has_cover_sidecar(unit: UnitTask) -> bool:
    return any(_is_cover_sidecar(os.path.basename(p).lower()) for p in unit.sidecars)


def _sidecar_rank(path: str) -> tuple[int, str]:
    """cover.* before folder.*; jpg before png before webp, as users expect."""
    name = os.path.basename(path).lower()
    return (_COVER_ORDER.index(name) if name in _COVER_ORDER else len(_COVER_ORDER), name)


def _cover_rank(name: str) -> tuple[int, int]:
    stem, _, ext = name.partition(".")
    return (("cover", "folder").index(stem), ("jpg", "jpeg", "png", "webp").index(ext))


# The cover names among the sidecars (formats/sidecars.py lists every name once), in the
# order a folder's cover is chosen.
_COVER_ORDER = tuple(
    sorted(
        (n for n in sidecars.SIDECAR_NAMES if n.startswith(("cover.", "folder."))), key=_cover_rank
    )
)


def _read_capped(path: str, cap: int) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise ParseError(f"sidecar larger than {cap // (1024 * 1024)} MiB")
    return data


def parse_one(task: ParseTask, pack: CoverPack, *, render_cover: bool = True) -> ParseOutcome:
    """Parse one file; `render_cover` lets a coverless PDF have page 1 rendered as its cover
    (False when the folder's cover sidecar would win anyway: rendering costs ~10-50 ms)."""
    started = time.perf_counter()
    spec = format_for_name(task.path)
    try:
        if spec is None:
            raise ParseError("unsupported file type")
        # One read serves the magic check and the fingerprint (for most books, the whole file).
        fingerprint, head, whole = _read_fingerprint(task.path)
        reason = check_magic(spec, head[:16])
        if reason:
            raise ParseError(reason)
        if whole is not None and spec.parse_bytes is not None:
            metadata = spec.parse_bytes(task.path, whole)  # small file: already in memory
        else:
            metadata = spec.parse(task.path)
        if render_cover and metadata.cover is None and metadata.format == "pdf":
            metadata = _with_rendered_cover(task.path, metadata)
        cover = None
        cover_error = None
        if metadata.cover is not None:
            try:
                cover = pack.store(metadata.cover.data, metadata.cover.mime)
            except OSError as exc:  # CoverDiskFull too: a full covers folder keeps the book
                cover_error = f"cover not stored: {exc.strerror or exc}"
            metadata = dataclasses.replace(metadata, cover=None)
        after = os.stat(task.path)
    except FileNotFoundError:
        return ParseOutcome(task.index, vanished=True, elapsed_s=time.perf_counter() - started)
    except ParseError as exc:
        return _failed(task, str(exc), started)
    except OSError as exc:
        return _failed(task, f"cannot read file: {exc.strerror or exc}", started)
    except RecursionError:
        return _failed(task, "structure nested too deeply", started)
    except MemoryError:
        return _failed(task, "file needs too much memory to parse", started)
    except Exception as exc:  # a parser bug must cost one file, not the scan
        return _failed(task, f"parser failed: {type(exc).__name__}: {exc}", started)
    changed = after.st_size != task.size or after.st_mtime_ns != task.mtime_ns
    return ParseOutcome(
        task.index,
        metadata=metadata,
        cover=cover,
        changed=changed,
        size=after.st_size,
        mtime_ns=COVER_PENDING_MTIME_NS if cover_error else after.st_mtime_ns,
        inode=after.st_ino,
        fingerprint=fingerprint,
        elapsed_s=time.perf_counter() - started,
        cover_error=cover_error,
    )


def _with_rendered_cover(path: str, metadata: Metadata) -> Metadata:
    """Page 1 as the cover; a page that will not render costs the cover, never the book."""
    from shelfscan.formats.pdf import CoverRenderError, render_first_page  # only PDFs get here

    try:
        rendered = render_first_page(path)
    except CoverRenderError as exc:
        return dataclasses.replace(metadata, extra={**metadata.extra, "cover_error": str(exc)})
    return dataclasses.replace(metadata, cover=rendered)


FINGERPRINT_SPAN = 64 * 1024


def file_fingerprint(path: str) -> str:
    """Size plus xxh3 of the first and last 64 KiB: recognises a moved file without reading it all.

    Cheap enough for every file (the head is in the page cache when it is
    parsed; xxh3 hashes 128 KiB in ~1 us against ~65 us for SHA-256 here).
    """
    return _read_fingerprint(path)[0]


def _read_fingerprint(path: str) -> tuple[str, bytes, bytes | None]:
    """(fingerprint, first bytes, the whole file when it fits in the two spans)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(FINGERPRINT_SPAN)
        tail = b""
        if size > 2 * FINGERPRINT_SPAN:
            fh.seek(size - FINGERPRINT_SPAN)
            tail = fh.read(FINGERPRINT_SPAN)
        elif size > FINGERPRINT_SPAN:
            tail = fh.read()
    whole = head + tail if size <= 2 * FINGERPRINT_SPAN else None
    hashed = whole if whole is not None else head + tail
    return f"{size}:{xxhash.xxh3_64_hexdigest(hashed)}", head, whole


def _failed(task: ParseTask, reason: str, started: float) -> ParseOutcome:
    reason = one_line(reason, limit=500) or "unreadable file"
    try:
        after = os.stat(task.path)
    except FileNotFoundError:
        return ParseOutcome(task.index, vanished=True, elapsed_s=time.perf_counter() - started)
    except OSError:
        return ParseOutcome(task.index, error=reason, size=task.size, mtime_ns=task.mtime_ns)
    changed = after.st_size != task.size or after.st_mtime_ns != task.mtime_ns
    return ParseOutcome(
        task.index,
        error=reason,
        changed=changed,
        size=after.st_size,
        mtime_ns=after.st_mtime_ns,
        inode=after.st_ino,
        elapsed_s=time.perf_counter() - started,
    )

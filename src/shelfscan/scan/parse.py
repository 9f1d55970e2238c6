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
from dataclasses import dataclass
from pathlib import Path

import xxhash

from shelfscan.covers import CoverPack, StoredCover
from shelfscan.errors import one_line
from shelfscan.formats import sidecars
from shelfscan.formats.records import Metadata, ParseError, pickled_by_fields
from shelfscan.formats.registry import check_magic, format_for_name

MAX_SIDECAR_BYTES = 4 * 1024 * 1024
MAX_SIDECAR_COVER_BYTES = 32 * 1024 * 1024


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


@dataclass(frozen=True, slots=True)
class UnitTask:
    """The files of one book folder (or one lone file) and the sidecars beside them."""

    index: int
    files: tuple[ParseTask, ...]
    sidecars: tuple[str, ...] = ()  # absolute paths


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SidecarData:
    opf: Metadata | None = None
    abs_json: Metadata | None = None
    description: str | None = None
    narrators: tuple[str, ...] = ()
    cover: StoredCover | None = None
    problems: tuple[tuple[str, str], ...] = ()  # (path, reason)


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class UnitOutcome:
    index: int
    files: tuple[ParseOutcome, ...]
    sidecars: SidecarData | None = None


def parse_units(units: list[UnitTask], covers_dir: str) -> list[UnitOutcome]:
    # Worker processes do not inherit the parent's logging set-up; pypdf warns about every
    # sloppy PDF, which the scan already reports as it sees fit.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    pack = CoverPack(Path(covers_dir))
    try:
        return [
            UnitOutcome(
                unit.index,
                tuple(parse_one(task, pack) for task in unit.files),
                read_sidecars(unit.sidecars, pack) if unit.sidecars else None,
            )
            for unit in units
        ]
    finally:
        pack.close()


def read_sidecars(paths: tuple[str, ...], pack: CoverPack) -> SidecarData:
    """Sidecars are optional extras: a broken one is reported and skipped, never fatal."""
    found: dict[str, object] = {}
    problems: list[tuple[str, str]] = []
    for path in sorted(paths, key=_sidecar_rank):
        name = os.path.basename(path).lower()
        try:
            if name.startswith(("cover.", "folder.")):
                if "cover" in found:
                    continue
                data = _read_capped(path, MAX_SIDECAR_COVER_BYTES)
                found["cover"] = pack.store(data)
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


def parse_one(task: ParseTask, pack: CoverPack) -> ParseOutcome:
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
        cover = None
        if metadata.cover is not None:
            try:
                cover = pack.store(metadata.cover.data, metadata.cover.mime)
            except OSError as exc:
                # A full or read-only covers folder must not lose the book itself.
                metadata = dataclasses.replace(
                    metadata, extra={**metadata.extra, "cover_error": one_line(exc)}
                )
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
        mtime_ns=after.st_mtime_ns,
        inode=after.st_ino,
        fingerprint=fingerprint,
        elapsed_s=time.perf_counter() - started,
    )


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

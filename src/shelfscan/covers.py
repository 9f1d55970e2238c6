"""Cover images, stored once per content hash in append-only pack files, outside the library.

One file per cover was the obvious design, but creating a file costs ~0.2-0.5 ms
of kernel CPU on the machines we measure (appending 50 KB costs ~16 us), which
alone capped a first scan near 1,000 books/s. So each parse chunk appends its
covers to one pack file; `shelfscan.covers` records (pack, offset, size) for
each sha256, and `read_cover` (or `shelfscan cover SHA256`) gets the bytes back.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from shelfscan.formats.images import sniff_image
from shelfscan.formats.records import pickled_by_fields

PACKS = "packs"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class StoredCover:
    sha256: str
    mime: str | None
    width: int | None
    height: int | None
    size: int
    pack: str  # file name under <covers dir>/packs/
    offset: int


@dataclass(slots=True)
class CoverPack:
    """The pack one parse chunk appends to; created on the first cover, made durable on close."""

    covers_dir: Path
    _file: BinaryIO | None = None
    _name: str = ""
    _stored: dict[str, StoredCover] = field(default_factory=dict)

    def store(self, data: bytes, declared_mime: str | None = None) -> StoredCover:
        sha = hashlib.sha256(data).hexdigest()
        known = self._stored.get(sha)
        if known is not None:
            return known  # the same cover twice in a chunk (parts of one audiobook) is kept once
        if self._file is None:
            folder = self.covers_dir / PACKS
            folder.mkdir(parents=True, exist_ok=True)
            self._name = f"{uuid.uuid4().hex}.pack"
            self._file = open(folder / self._name, "ab")  # noqa: SIM115 - closed by close()
        offset = self._file.tell()
        self._file.write(data)
        sniffed = sniff_image(data)
        mime, width, height = sniffed if sniffed else (declared_mime, None, None)
        stored = StoredCover(sha, mime, width, height, len(data), self._name, offset)
        self._stored[sha] = stored
        return stored

    def close(self) -> None:
        """Flush to disk before the rows that point into the pack are committed."""
        if self._file is not None:
            self._file.flush()
            os.fdatasync(self._file.fileno())
            self._file.close()
            self._file = None


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

"""Cover images stored once per content hash, outside the user's library."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from shelfscan.formats.images import sniff_image

_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/gif": ".gif",
    "image/webp": ".webp",
}


@dataclass(frozen=True, slots=True)
class StoredCover:
    sha256: str
    mime: str | None
    width: int | None
    height: int | None
    size: int


def cover_path(covers_dir: Path, sha256: str, mime: str | None) -> Path:
    return covers_dir / sha256[:2] / f"{sha256}{_EXTENSIONS.get(mime or '', '.bin')}"


def store_cover(covers_dir: Path, data: bytes, declared_mime: str | None = None) -> StoredCover:
    """Write the image under its hash unless it is already there; cheap when it is."""
    sha = hashlib.sha256(data).hexdigest()
    sniffed = sniff_image(data)
    mime, width, height = sniffed if sniffed else (declared_mime, None, None)
    target = cover_path(covers_dir, sha, mime)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return StoredCover(sha, mime, width, height, len(data))

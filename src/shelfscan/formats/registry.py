"""Which parser reads which file: by extension first, confirmed by magic bytes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shelfscan.formats.epub import parse_epub
from shelfscan.formats.records import Metadata

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True, slots=True)
class FormatSpec:
    name: str
    extensions: tuple[str, ...]  # lower-case, with the dot; longest match wins
    parse: Callable[[str], Metadata]
    magic: tuple[bytes, ...]
    description: str


FORMATS: tuple[FormatSpec, ...] = (
    FormatSpec("epub", (".epub", ".kepub.epub", ".kepub"), parse_epub, _ZIP_MAGIC, "an EPUB (zip)"),
)

_BY_EXTENSION: Mapping[str, FormatSpec] = MappingProxyType(
    {ext: spec for spec in FORMATS for ext in spec.extensions}
)
MAX_SUFFIX_DOTS = max(ext.count(".") for ext in _BY_EXTENSION)


def format_for_name(name: str) -> FormatSpec | None:
    """The format a file name claims, case-insensitively (`Book.EPUB` is an EPUB)."""
    lowered = name.lower()
    # Try the longest multi-dot suffix first (".kepub.epub" before ".epub").
    start = len(lowered)
    candidates = []
    for _ in range(MAX_SUFFIX_DOTS):
        start = lowered.rfind(".", 0, start)
        if start <= 0:
            break
        candidates.append(lowered[start:])
    for suffix in reversed(candidates):
        spec = _BY_EXTENSION.get(suffix)
        if spec is not None:
            return spec
    return None


def check_magic(spec: FormatSpec, head: bytes) -> str | None:
    """None when the bytes fit the format, else a one-line reason."""
    if not head:
        return "empty file"
    if any(head.startswith(m) for m in spec.magic):
        return None
    return f"not {spec.description}: unexpected leading bytes {head[:8]!r}"

"""Which parser reads which file: by extension first, confirmed by magic bytes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from shelfscan.formats.audio import parse_audio
from shelfscan.formats.comics import parse_cb7, parse_cbr, parse_cbt, parse_cbz
from shelfscan.formats.epub import parse_epub
from shelfscan.formats.fb2 import parse_fb2
from shelfscan.formats.mobi import parse_mobi
from shelfscan.formats.pdf import parse_pdf
from shelfscan.formats.records import Metadata

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass(frozen=True, slots=True)
class FormatSpec:
    name: str
    extensions: tuple[str, ...]  # lower-case, with the dot; longest match wins
    parse: Callable[[str], Metadata]
    magic: tuple[bytes, ...]  # leading bytes; empty when the parser itself sniffs the content
    description: str
    named_by_extension: bool = False  # a family of formats: the file's format is its extension
    # Parses a small file from the bytes the parse stage already read (path, data) -> record.
    parse_bytes: Callable[[str, bytes], Metadata] | None = None

    def format_of(self, name: str) -> str:
        if self.named_by_extension:
            return name.rsplit(".", 1)[-1].lower()
        return self.name


FORMATS: tuple[FormatSpec, ...] = (
    FormatSpec(
        "epub",
        (".epub", ".kepub.epub", ".kepub"),
        parse_epub,
        _ZIP_MAGIC,
        "an EPUB (zip)",
        parse_bytes=lambda path, data: parse_epub(path, data=data),
    ),
    FormatSpec("pdf", (".pdf",), parse_pdf, (b"%PDF",), "a PDF"),
    FormatSpec("mobi", (".mobi", ".azw", ".azw3", ".prc"), parse_mobi, (), "a MOBI/AZW3 book"),
    FormatSpec("fb2", (".fb2", ".fb2.zip"), parse_fb2, (), "an FB2 book"),
    # Comic archives are often misnamed (a zip called .cbr): the parsers sniff the container.
    FormatSpec("cbz", (".cbz",), parse_cbz, (), "a CBZ comic"),
    FormatSpec("cbr", (".cbr",), parse_cbr, (), "a CBR comic"),
    FormatSpec("cb7", (".cb7",), parse_cb7, (), "a CB7 comic"),
    FormatSpec("cbt", (".cbt",), parse_cbt, (), "a CBT comic"),
    FormatSpec(
        "audio",
        (".m4b", ".m4a", ".mp4", ".mp3", ".flac", ".ogg", ".oga", ".opus"),
        parse_audio,
        (),
        "an audio file",
        named_by_extension=True,
    ),
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
    if not spec.magic or any(head.startswith(m) for m in spec.magic):
        return None
    return f"not {spec.description}: unexpected leading bytes {head[:8]!r}"

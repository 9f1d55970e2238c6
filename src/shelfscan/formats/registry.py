"""Which parser reads which file: by extension first, confirmed by magic bytes.

The table names each parser by module and function and imports it the first time a
file of that format is parsed: a scan of audiobooks never loads the EPUB, PDF or
comic readers (with lxml), and a rescan that parses nothing loads none of them.
For a small library the CLI's start-up is most of its run; these imports were
~0.1 s of it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import cast

from shelfscan.formats.records import Metadata

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")

# Audio extension -> the format recorded for it (.mp4 and .oga are spellings of m4a and
# ogg). Here rather than in the audio reader, so that grouping can tell audio files apart
# without loading mutagen.
AUDIO_EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {
        ".m4b": "m4b",
        ".m4a": "m4a",
        ".mp4": "m4a",
        ".mp3": "mp3",
        ".flac": "flac",
        ".ogg": "ogg",
        ".oga": "ogg",
        ".opus": "opus",
    }
)

Parser = Callable[[str], Metadata]
BytesParser = Callable[[str, bytes], Metadata]


def _load(ref: str) -> Callable[..., Metadata]:
    """`module:function` -> the function (after the first call, a sys.modules look-up)."""
    module, _, name = ref.partition(":")
    return cast("Callable[..., Metadata]", getattr(importlib.import_module(module), name))


@dataclass(frozen=True, slots=True)
class FormatSpec:
    name: str
    extensions: tuple[str, ...]  # lower-case, with the dot; longest match wins
    parser: str  # "module:function" taking a path; imported on first use
    magic: tuple[bytes, ...]  # leading bytes; empty when the parser itself sniffs the content
    description: str
    named_by_extension: bool = False  # a family of formats: the file's format is its extension
    # The parser also takes `data=` (the bytes the parse stage already read of a small file).
    reads_bytes: bool = False

    def format_of(self, name: str) -> str:
        if self.named_by_extension:
            return name.rsplit(".", 1)[-1].lower()
        return self.name

    def parse(self, path: str) -> Metadata:
        parse: Parser = _load(self.parser)
        return parse(path)

    @property
    def parse_bytes(self) -> BytesParser | None:
        """Parses a small file from bytes already in memory, when the format can."""
        if not self.reads_bytes:
            return None
        parse = _load(self.parser)
        return lambda path, data: parse(path, data=data)


FORMATS: tuple[FormatSpec, ...] = (
    FormatSpec(
        "epub",
        (".epub", ".kepub.epub", ".kepub"),
        "shelfscan.formats.epub:parse_epub",
        _ZIP_MAGIC,
        "an EPUB (zip)",
        reads_bytes=True,
    ),
    FormatSpec("pdf", (".pdf",), "shelfscan.formats.pdf:parse_pdf", (b"%PDF",), "a PDF"),
    FormatSpec(
        "mobi",
        (".mobi", ".azw", ".azw3", ".prc"),
        "shelfscan.formats.mobi:parse_mobi",
        (),
        "a MOBI/AZW3 book",
    ),
    FormatSpec("fb2", (".fb2", ".fb2.zip"), "shelfscan.formats.fb2:parse_fb2", (), "an FB2 book"),
    # Comic archives are often misnamed (a zip called .cbr): the parsers sniff the container.
    FormatSpec("cbz", (".cbz",), "shelfscan.formats.comics:parse_cbz", (), "a CBZ comic"),
    FormatSpec("cbr", (".cbr",), "shelfscan.formats.comics:parse_cbr", (), "a CBR comic"),
    FormatSpec("cb7", (".cb7",), "shelfscan.formats.comics:parse_cb7", (), "a CB7 comic"),
    FormatSpec("cbt", (".cbt",), "shelfscan.formats.comics:parse_cbt", (), "a CBT comic"),
    FormatSpec(
        "audio",
        tuple(AUDIO_EXTENSIONS),
        "shelfscan.formats.audio:parse_audio",
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

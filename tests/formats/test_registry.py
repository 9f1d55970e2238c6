"""The format registry: names to parsers, parsers imported only when a file needs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shelfscan.formats.records import ParseError
from shelfscan.formats.registry import FORMATS, check_magic, format_for_name
from tests.formats.test_epub import make_epub3


@pytest.mark.parametrize(
    ("name", "spec", "fmt"),
    [
        ("Book.epub", "epub", "epub"),
        ("Book.EPUB", "epub", "epub"),
        ("Book.kepub.epub", "epub", "epub"),
        ("a.b.pdf", "pdf", "pdf"),
        ("Book.azw3", "mobi", "mobi"),
        ("Book.fb2.zip", "fb2", "fb2"),
        ("Issue 1.cbz", "cbz", "cbz"),
        ("Part 1.M4B", "audio", "m4b"),
        ("01 - Chapter.mp3", "audio", "mp3"),
        ("track.opus", "audio", "opus"),
        ("notes.txt", None, None),
        (".epub", None, None),
        ("archive.zip", None, None),
    ],
)
def test_format_for_name(name: str, spec: str | None, fmt: str | None) -> None:
    found = format_for_name(name)
    assert (found.name if found else None) == spec
    assert (found.format_of(name) if found else None) == fmt


@pytest.mark.parametrize(
    ("spec", "head", "reason"),
    [
        ("epub", b"PK\x03\x04rest", None),
        ("epub", b"%PDF-1.7", "not an EPUB (zip): unexpected leading bytes b'%PDF-1.7'"),
        ("pdf", b"", "empty file"),
        ("mobi", b"anything", None),  # the parser sniffs
    ],
)
def test_check_magic(spec: str, head: bytes, reason: str | None) -> None:
    assert check_magic(next(s for s in FORMATS if s.name == spec), head) == reason


def test_every_parser_reference_resolves() -> None:
    """A typo in a `module:function` reference would only show on the first such file."""
    for spec in FORMATS:
        assert callable(spec.parse_bytes or spec.parse)
        assert (spec.parse_bytes is not None) == spec.reads_bytes
        with pytest.raises((ParseError, FileNotFoundError)):
            spec.parse("/nonexistent/shelfscan-registry-test" + spec.extensions[0])


def test_parse_and_parse_bytes_read_the_same_book(tmp_path: Path) -> None:
    path = make_epub3(tmp_path / "book.epub")
    spec = format_for_name(path.name)
    assert spec is not None and spec.parse_bytes is not None
    assert spec.parse_bytes(str(path), path.read_bytes()) == spec.parse(str(path))


def test_the_registry_loads_no_parser_until_one_is_used() -> None:
    """A rescan that parses nothing, or a scan of audiobooks only, pays for no EPUB, PDF
    or comic reader (nor lxml, nor mutagen); a fresh interpreter shows what the CLI's
    import pulls in."""
    code = (
        "import sys\n"
        "import shelfscan.cli\n"
        "from shelfscan.formats.registry import format_for_name\n"
        "spec = format_for_name('a.epub')\n"
        "parsers = ('epub', 'pdf', 'mobi', 'fb2', 'comics', 'audio', 'lxml', 'mutagen')\n"
        "loaded = {m.removeprefix('shelfscan.formats.') for m in sys.modules}\n"
        "print(sorted(p for p in parsers if p in loaded))\n"
        "spec.parse_bytes\n"
        "loaded = {m.removeprefix('shelfscan.formats.') for m in sys.modules}\n"
        "print(sorted(p for p in parsers if p in loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out == ["[]", "['epub', 'lxml']"]

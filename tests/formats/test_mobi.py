"""parse_mobi against the real corpus, hand-built PalmDB/MOBI files and hostile variants."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shelfscan.formats.mobi import parse_mobi
from shelfscan.formats.records import Identifier, ParseError
from tests.formats.helpers import corpus_keys, png_bytes

# ---------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------


COVER = png_bytes(7, 3)
THUMB = png_bytes(2, 2)


@dataclass
class MobiSpec:
    """What goes into a hand-built MOBI; the defaults make a small valid MOBI 6 book."""

    full_name: bytes = b"The Hand-Built Book"
    pdb_name: bytes = b"Hand_Built"
    encoding: int = 65001
    locale: int = 0x409
    version: int = 6
    header_len: int = 232
    exth: list[tuple[int, bytes]] = field(
        default_factory=lambda: [
            (100, b"First Author"),
            (100, b"Second Author; Third Author"),
            (101, b"Hand Press"),
            (113, b"B00TEST123"),
            (201, struct.pack(">I", 0)),
            (202, struct.pack(">I", 1)),
        ]
    )
    images: list[bytes] = field(default_factory=lambda: [COVER, THUMB])
    exth_flag: bool = True
    raw_exth: bytes | None = None  # replaces the EXTH block verbatim
    pdb_type: bytes = b"BOOKMOBI"
    full_name_offset: int | None = None  # override the computed offset


def exth_block(records: list[tuple[int, bytes]]) -> bytes:
    body = b"".join(struct.pack(">II", kind, len(value) + 8) + value for kind, value in records)
    block = b"EXTH" + struct.pack(">II", 12 + len(body), len(records)) + body
    return block + b"\x00" * (-len(block) % 4)


def build_mobi(spec: MobiSpec) -> bytes:
    text = b"<html><body>Hello</body></html>"
    header = bytearray(16 + spec.header_len)
    struct.pack_into(">HHIHHHH", header, 0, 1, 0, len(text), 1, 4096, 0, 0)
    header[16:20] = b"MOBI"
    struct.pack_into(">IIII", header, 20, spec.header_len, 2, spec.encoding, 0xABCD)
    struct.pack_into(">I", header, 36, spec.version)
    exth = spec.raw_exth if spec.raw_exth is not None else exth_block(spec.exth)
    name_offset = len(header) + len(exth)
    if spec.full_name_offset is not None:
        name_offset = spec.full_name_offset
    struct.pack_into(">II", header, 0x54, name_offset, len(spec.full_name))
    struct.pack_into(">I", header, 0x5C, spec.locale)
    first_image = 2 if spec.images else 0xFFFFFFFF
    struct.pack_into(">I", header, 0x6C, first_image)
    struct.pack_into(">I", header, 0x80, 0x40 if spec.exth_flag else 0)
    record0 = bytes(header) + exth + spec.full_name + b"\x00\x00"
    record0 += b"\x00" * (-len(record0) % 4)

    records = [record0, text, *spec.images]
    table_end = 78 + 8 * len(records) + 2
    offsets, pos = [], table_end
    for record in records:
        offsets.append(pos)
        pos += len(record)
    pdb = bytearray(78)
    pdb[: len(spec.pdb_name)] = spec.pdb_name
    pdb[60:68] = spec.pdb_type
    struct.pack_into(">H", pdb, 76, len(records))
    table = b"".join(struct.pack(">II", off, i * 2) for i, off in enumerate(offsets))
    return bytes(pdb) + table + b"\x00\x00" + b"".join(records)


def write_mobi(path: Path, spec: MobiSpec | None = None) -> Path:
    path.write_bytes(build_mobi(spec or MobiSpec()))
    return path


# ---------------------------------------------------------------------------
# Real files
# ---------------------------------------------------------------------------

_EXTENSIONS = (".mobi", ".azw", ".azw3", ".prc")


CORPUS_MOBIS = corpus_keys(lambda k, v: k.lower().endswith(_EXTENSIONS))
# Truth records EXTH 524 only; where a book lacks it, the MOBI header locale still
# names a language (sample-cp1252.mobi: locale 0x409 -> "en").
LOCALE_LANGUAGE = {"mobi/sample-cp1252.mobi": "en"}


def test_corpus_lists_every_mobi(corpus_dir: Path) -> None:
    on_disk = {
        str(p.relative_to(corpus_dir))
        for p in corpus_dir.rglob("*")
        if p.suffix.lower() in _EXTENSIONS
    }
    assert on_disk == set(CORPUS_MOBIS)


@pytest.mark.parametrize("key", CORPUS_MOBIS)
def test_corpus_mobi_matches_truth(
    key: str, corpus_dir: Path, corpus_truth: dict[str, dict[str, Any]]
) -> None:
    truth = corpus_truth[key]
    if truth.get("corrupt"):
        with pytest.raises(ParseError):
            parse_mobi(corpus_dir / key)
        return
    meta = parse_mobi(corpus_dir / key)
    assert meta.format == truth["format"]
    assert meta.title == truth.get("title")
    assert [c.name for c in meta.contributors if c.role == "author"] == truth.get("authors", [])
    assert meta.language == truth.get("language", LOCALE_LANGUAGE.get(key))
    assert meta.series == ()
    isbn13 = [i.value for i in meta.identifiers if i.type == "isbn_13"]
    assert isbn13 == ([truth["isbn"]] if "isbn" in truth else [])
    assert len(meta.chapters) == truth.get("chapters", 0)
    assert (meta.cover is not None) == truth["has_cover"]
    if meta.cover is not None:
        assert meta.cover.mime == "image/jpeg" and meta.cover.data.startswith(b"\xff\xd8")


def test_corpus_details(corpus_dir: Path) -> None:
    bear = parse_mobi(corpus_dir / "mobi/test.mobi")
    assert bear.publisher == "Happy Publisher"
    assert bear.description == "Honey"
    assert bear.genres == ("Baloo KFileMetaData",)
    assert bear.release_date == "2014-01-01"
    # EXTH 113 holds calibre's book UUID, not an ASIN.
    assert bear.identifiers == (Identifier("uuid", "cf53afce-3180-4586-b7af-b850eb87b6b3"),)
    assert bear.cover is not None and len(bear.cover.data) == 3397

    lorem = parse_mobi(corpus_dir / "mobi/lorem.azw3")
    assert lorem.genres == ("rubygem", "fixture")
    assert lorem.description == "This is sample book from test fixtures of libmobi.rb project."
    assert lorem.release_date == "2018-08-01"
    assert lorem.extra["mobi_version"] == "8"

    sample = parse_mobi(corpus_dir / "mobi/sample-cp1252.mobi")
    assert sample.cover is not None and len(sample.cover.data) == 62092  # record 27 + 1
    huff = parse_mobi(corpus_dir / "mobi/sample-unicode-huffdic.mobi")
    assert huff.cover is not None and huff.cover.data == sample.cover.data  # record 35 + 1


# ---------------------------------------------------------------------------
# Synthetic books
# ---------------------------------------------------------------------------


def test_hand_built_mobi(tmp_path: Path) -> None:
    meta = parse_mobi(write_mobi(tmp_path / "book.mobi"))
    assert meta.format == "mobi"
    assert meta.title == "The Hand-Built Book"
    assert [(c.name, c.role) for c in meta.contributors] == [
        ("First Author", "author"),
        ("Second Author", "author"),
        ("Third Author", "author"),
    ]
    assert meta.publisher == "Hand Press"
    assert meta.identifiers == (Identifier("asin", "B00TEST123"),)
    assert meta.language == "en"  # from the locale
    assert meta.cover is not None and meta.cover.data == COVER and meta.cover.mime == "image/png"
    assert meta.extra == {"mobi_version": "6"}


def test_exth_fields(tmp_path: Path) -> None:
    spec = MobiSpec(
        exth=[
            (503, b"Updated Title"),
            (103, b"<p>One &amp; <i>two</i></p>"),
            (104, b"0-306-40615-2"),
            (105, b"Fantasy; Adventure"),
            (105, b"Fantasy"),
            (106, b"2001-02-03T00:00:00+00:00"),
            (504, b"B00OTHER12"),
            (524, b"fr-CA"),
        ]
    )
    meta = parse_mobi(write_mobi(tmp_path / "fields.azw", spec))
    assert meta.title == "Updated Title"
    assert meta.description == "One & two"
    assert meta.genres == ("Fantasy", "Adventure")
    assert meta.release_date == "2001-02-03"
    assert meta.language == "fr-CA"
    assert meta.identifiers == (
        Identifier("isbn_10", "0306406152"),
        Identifier("isbn_13", "9780306406157"),
        Identifier("asin", "B00OTHER12"),
    )
    assert meta.cover is None  # no EXTH 201/202


def test_cp1252_and_locale(tmp_path: Path) -> None:
    spec = MobiSpec(
        full_name="Café Müller".encode("cp1252"),
        encoding=1252,
        locale=0x407,
        exth=[(100, "Jürgen Groß".encode("cp1252"))],
    )
    meta = parse_mobi(write_mobi(tmp_path / "de.mobi", spec))
    assert meta.title == "Café Müller"
    assert [c.name for c in meta.contributors] == ["Jürgen Groß"]
    assert meta.language == "de"


def test_format_by_extension_and_kf8(tmp_path: Path) -> None:
    assert parse_mobi(write_mobi(tmp_path / "book.AZW3")).format == "azw3"
    assert parse_mobi(write_mobi(tmp_path / "book.prc")).format == "mobi"
    kf8_only = MobiSpec(version=8)
    assert parse_mobi(write_mobi(tmp_path / "kf8.azw", kf8_only)).format == "azw3"
    hybrid = MobiSpec(version=8, exth=[(121, struct.pack(">I", 5))])
    assert parse_mobi(write_mobi(tmp_path / "hybrid.mobi", hybrid)).format == "mobi"


def test_thumbnail_when_cover_is_not_an_image(tmp_path: Path) -> None:
    spec = MobiSpec(images=[b"not an image at all", THUMB])
    meta = parse_mobi(write_mobi(tmp_path / "thumb.mobi", spec))
    assert meta.cover is not None and meta.cover.data == THUMB


def test_without_exth_falls_back_to_names(tmp_path: Path) -> None:
    meta = parse_mobi(write_mobi(tmp_path / "bare.mobi", MobiSpec(exth_flag=False)))
    assert meta.title == "The Hand-Built Book"
    assert meta.contributors == () and meta.cover is None
    # A full name pointing outside record 0 leaves the PDB name.
    broken = MobiSpec(exth_flag=False, full_name_offset=10_000_000)
    assert parse_mobi(write_mobi(tmp_path / "pdb.mobi", broken)).title == "Hand Built"


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parse_mobi(tmp_path / "gone.mobi")


def test_unreadable_path_is_a_parse_error(tmp_path: Path) -> None:
    folder = tmp_path / "folder.mobi"
    folder.mkdir()
    with pytest.raises(ParseError):
        parse_mobi(folder)


# ---------------------------------------------------------------------------
# Hostile files
# ---------------------------------------------------------------------------


def test_exth_length_past_the_end(tmp_path: Path, timed: Callable[..., Any]) -> None:
    """A lying EXTH record length ends the walk; what came before it is kept."""
    good = struct.pack(">II", 100, 8 + 6) + b"Author"
    liar = struct.pack(">II", 101, 0xFFFFFF00) + b"Publisher"
    body = good + liar
    raw = b"EXTH" + struct.pack(">II", 0xFFFFFFF0, 0xFFFFFFFF) + body
    meta = timed(lambda: parse_mobi(write_mobi(tmp_path / "liar.mobi", MobiSpec(raw_exth=raw))))
    assert [c.name for c in meta.contributors] == ["Author"]
    assert meta.publisher is None


def test_zero_length_exth_record(tmp_path: Path, timed: Callable[..., Any]) -> None:
    raw = b"EXTH" + struct.pack(">II", 64, 1_000_000) + struct.pack(">II", 100, 0) * 8
    meta = timed(lambda: parse_mobi(write_mobi(tmp_path / "zero.mobi", MobiSpec(raw_exth=raw))))
    assert meta.contributors == ()


def test_cover_offset_past_the_records(tmp_path: Path) -> None:
    spec = MobiSpec(exth=[(201, struct.pack(">I", 0xFFFFFFF0)), (202, struct.pack(">I", 50))])
    assert parse_mobi(write_mobi(tmp_path / "far.mobi", spec)).cover is None


def test_record_offsets_past_the_end(tmp_path: Path) -> None:
    data = bytearray(build_mobi(MobiSpec()))
    struct.pack_into(">I", data, 78, 0x7FFFFFFF)  # record 0 starts beyond the file
    path = tmp_path / "offsets.mobi"
    path.write_bytes(bytes(data))
    with pytest.raises(ParseError, match="record 0"):
        parse_mobi(path)


def test_image_record_offset_past_the_end(tmp_path: Path) -> None:
    data = bytearray(build_mobi(MobiSpec()))
    struct.pack_into(">I", data, 78 + 8 * 2, len(data) + 100)  # the cover record
    path = tmp_path / "cover-offset.mobi"
    path.write_bytes(bytes(data))
    meta = parse_mobi(path)
    assert meta.title == "The Hand-Built Book"
    assert meta.cover is not None and meta.cover.data == THUMB  # the thumbnail stands in


@pytest.mark.parametrize("size", [0, 10, 77, 90, 300])
def test_truncated_files(tmp_path: Path, size: int, timed: Callable[..., Any]) -> None:
    path = tmp_path / "cut.mobi"
    path.write_bytes(build_mobi(MobiSpec())[:size])
    with pytest.raises(ParseError):
        timed(lambda: parse_mobi(path))


def test_not_a_mobi(tmp_path: Path) -> None:
    text = tmp_path / "text.mobi"
    text.write_text("Just some text, long enough to fill a PalmDB header. " * 5)
    with pytest.raises(ParseError, match="not a MOBI"):
        parse_mobi(text)
    topaz = tmp_path / "book.azw"
    topaz.write_bytes(b"TPZ0" + bytes(200))
    with pytest.raises(ParseError, match="Topaz"):
        parse_mobi(topaz)


def test_palmdoc_without_mobi_header(tmp_path: Path) -> None:
    data = bytearray(build_mobi(MobiSpec(pdb_type=b"TEXtREAd")))
    record0 = struct.unpack_from(">I", data, 78)[0]
    data[record0 + 16 : record0 + 20] = b"XXXX"  # no MOBI header
    path = tmp_path / "plain.prc"
    path.write_bytes(bytes(data))
    meta = parse_mobi(path)
    assert meta.title == "Hand Built"
    assert meta.contributors == () and meta.cover is None


# ---------------------------------------------------------------------------
# Salvage (issue 10): what parses is kept, the damage is the file's warning
# ---------------------------------------------------------------------------


def test_malformed_exth_record_keeps_title_and_author_with_a_warning(tmp_path: Path) -> None:
    good = struct.pack(">II", 100, 8 + 10) + b"Kept Autho"
    title = struct.pack(">II", 503, 8 + 10) + b"Kept Title"
    bad = struct.pack(">II", 101, 3) + b"xx"  # a length shorter than its own header
    raw = b"EXTH" + struct.pack(">II", 12 + len(good + title + bad), 4) + good + title + bad
    meta = parse_mobi(write_mobi(tmp_path / "bad-exth.mobi", MobiSpec(raw_exth=raw)))
    assert (meta.title, [c.name for c in meta.contributors]) == ("Kept Title", ["Kept Autho"])
    assert meta.warning == "EXTH record 3 of 4 is malformed (length 3)"


def test_whole_mobi_has_no_warning(tmp_path: Path) -> None:
    assert parse_mobi(write_mobi(tmp_path / "fine.mobi")).warning is None


def test_record_table_past_the_end_salvages_record_0(tmp_path: Path) -> None:
    data = bytearray(build_mobi(MobiSpec()))
    struct.pack_into(">I", data, 78 + 8, len(data) + 1000)  # record 1 starts beyond the file
    path = tmp_path / "table.mobi"
    path.write_bytes(bytes(data))
    meta = parse_mobi(path)
    assert meta.title == "The Hand-Built Book"
    assert [c.name for c in meta.contributors][:1] == ["First Author"]
    assert meta.warning is not None and "past the end" in meta.warning

"""parse_fb2 against the real corpus, hand-written FictionBook documents and hostile files."""

from __future__ import annotations

import base64
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shelfscan.formats import fb2
from shelfscan.formats.fb2 import parse_fb2
from shelfscan.formats.records import Contributor, Identifier, ParseError, SeriesEntry
from tests.formats.helpers import corpus_keys, png_bytes

# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


COVER = png_bytes(5, 4)
OTHER = png_bytes(9, 9)


def b64(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i : i + 60] for i in range(0, len(text), 60))  # wrapped, as in the wild


def fb2_document(*, body: str = "<p>Text.</p>", prolog: str = "", encoding: str = "utf-8") -> str:
    return f"""<?xml version="1.0" encoding="{encoding}"?>
{prolog}<FictionBook xmlns="http://www.gribuser.ru/xml/fictionbook/2.0"
             xmlns:l="http://www.w3.org/1999/xlink">
 <description>
  <title-info>
   <genre>sf_fantasy</genre>
   <genre match="80">adventure</genre>
   <author><first-name>Anna</first-name><middle-name>Maria</middle-name>
     <last-name>Petrova</last-name><id>a1</id></author>
   <author><nickname>Ghostwriter</nickname></author>
   <author><last-name>Solo</last-name></author>
   <author><email>nobody@example.org</email></author>
   <book-title>Сказка  о тесте</book-title>
   <annotation><p>First <emphasis>line</emphasis>.</p><empty-line/><p>Second line.</p></annotation>
   <keywords>tests, parsing,, fb2</keywords>
   <date value="2003-04-05">April 2003</date>
   <coverpage><image l:href="#cover.png"/></coverpage>
   <lang>ru</lang>
   <src-lang>en</src-lang>
   <translator><first-name>Tom</first-name><last-name>Trans</last-name></translator>
   <sequence name="Test Saga" number="3"><sequence name="Inner Arc" number="1.5"/></sequence>
  </title-info>
  <document-info><id>doc-42</id><program-used>hand</program-used></document-info>
  <publish-info><publisher>Fable Press</publisher><year>2010</year>
    <isbn>978-0-306-40615-7</isbn></publish-info>
 </description>
 <body>{body}</body>
 <binary id="other.png" content-type="image/png">{b64(OTHER)}</binary>
 <binary id="cover.png" content-type="image/png">{b64(COVER)}</binary>
</FictionBook>
"""


def assert_full(meta: Any) -> None:
    assert meta.format == "fb2"
    assert meta.title == "Сказка о тесте"
    assert meta.contributors == (
        Contributor("Anna Maria Petrova", "author", "Petrova, Anna Maria"),
        Contributor("Ghostwriter", "author", None),
        Contributor("Solo", "author", "Solo"),
        Contributor("Tom Trans", "translator", "Trans, Tom"),
    )
    assert meta.genres == ("sf_fantasy", "adventure")
    assert meta.tags == ("tests", "parsing", "fb2")
    assert meta.series == (
        SeriesEntry("Test Saga", Decimal("3")),
        SeriesEntry("Inner Arc", Decimal("1.5")),
    )
    assert meta.description == "First line.\nSecond line."
    assert meta.release_date == "2003-04-05"
    assert meta.language == "ru"
    assert meta.publisher == "Fable Press"
    assert meta.identifiers == (Identifier("isbn_13", "9780306406157"),)
    assert meta.extra == {"fb2_id": "doc-42", "publish_year": "2010", "original_language": "en"}
    assert meta.cover is not None and meta.cover.data == COVER and meta.cover.mime == "image/png"


# ---------------------------------------------------------------------------
# Real files
# ---------------------------------------------------------------------------


CORPUS_FB2 = corpus_keys(lambda k, v: k.lower().endswith((".fb2", ".fb2.zip")))


def test_corpus_lists_every_fb2(corpus_dir: Path) -> None:
    on_disk = {
        str(p.relative_to(corpus_dir))
        for p in corpus_dir.rglob("*")
        if p.name.lower().endswith((".fb2", ".fb2.zip"))
    }
    assert on_disk == set(CORPUS_FB2)


@pytest.mark.parametrize("key", CORPUS_FB2)
def test_corpus_fb2_matches_truth(
    key: str, corpus_dir: Path, corpus_truth: dict[str, dict[str, Any]]
) -> None:
    truth = corpus_truth[key]
    if truth.get("corrupt"):
        with pytest.raises(ParseError):
            parse_fb2(corpus_dir / key)
        return
    meta = parse_fb2(corpus_dir / key)
    assert meta.format == truth["format"]
    assert meta.title == truth.get("title")
    assert [c.name for c in meta.contributors if c.role == "author"] == truth.get("authors", [])
    assert meta.language == truth.get("language")
    if "series" in truth:
        assert [s.name for s in meta.series] == [truth["series"]]
        assert meta.series[0].number == Decimal(str(truth["series_index"]))
    else:
        assert meta.series == ()
    isbn13 = [i.value for i in meta.identifiers if i.type == "isbn_13"]
    assert isbn13 == ([truth["isbn"]] if "isbn" in truth else [])
    assert (meta.cover is not None) == truth["has_cover"]


def test_corpus_minihelp_is_read_despite_its_undefined_entity(corpus_dir: Path) -> None:
    meta = parse_fb2(corpus_dir / "fb2/MiniHelp.en.fb2")
    assert meta.contributors == (Contributor("FBReader", "author", "FBReader"),)
    assert meta.genres == () and meta.description is None


# ---------------------------------------------------------------------------
# Synthetic books
# ---------------------------------------------------------------------------


def test_full_document(tmp_path: Path) -> None:
    path = tmp_path / "book.fb2"
    path.write_text(fb2_document(), "utf-8")
    assert_full(parse_fb2(path))


def test_zipped(tmp_path: Path) -> None:
    path = tmp_path / "book.fb2.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("readme.txt", "not this one")
        zf.writestr("book.fb2", fb2_document())
    assert_full(parse_fb2(path))


def test_windows_1251(tmp_path: Path) -> None:
    path = tmp_path / "cp1251.fb2"
    path.write_bytes(fb2_document(encoding="windows-1251").encode("cp1251"))
    assert_full(parse_fb2(path))


def test_sloppy_body_keeps_metadata_and_cover(tmp_path: Path) -> None:
    """An undeclared entity in the body: the description and cover binary are still read."""
    path = tmp_path / "sloppy.fb2"
    path.write_text(fb2_document(body="<p>Version &Undeclared; <b>unclosed</p>"), "utf-8")
    assert_full(parse_fb2(path))


def test_cover_falls_back_to_declared_type(tmp_path: Path) -> None:
    doc = fb2_document().replace(b64(COVER), b64(b"opaque bytes"))
    path = tmp_path / "odd-cover.fb2"
    path.write_text(doc, "utf-8")
    meta = parse_fb2(path)
    assert meta.cover is not None and meta.cover.mime == "image/png"
    missing = tmp_path / "missing-cover.fb2"
    missing.write_text(fb2_document().replace('id="cover.png"', 'id="elsewhere"'), "utf-8")
    assert parse_fb2(missing).cover is None


def test_publish_year_when_no_date(tmp_path: Path) -> None:
    doc = fb2_document().replace('<date value="2003-04-05">April 2003</date>', "")
    path = tmp_path / "year.fb2"
    path.write_text(doc, "utf-8")
    assert parse_fb2(path).release_date == "2010"


def test_over_the_size_cap_reads_the_head(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file larger than the cap is read as far as the cap: the description is at the head."""
    big = fb2_document(body="<p>" + "words " * 5000 + "</p>")
    path = tmp_path / "big.fb2"
    path.write_text(big, "utf-8")
    monkeypatch.setattr(fb2, "MAX_FB2_BYTES", big.index("<body>") + 100)
    meta = parse_fb2(path)
    assert meta.title == "Сказка о тесте"
    assert meta.cover is None  # its <binary> lies beyond the cap
    monkeypatch.setattr(fb2, "MAX_FB2_BYTES", 200)
    with pytest.raises(ParseError, match="no <description>"):
        parse_fb2(path)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parse_fb2(tmp_path / "gone.fb2")


def test_unreadable_path_is_a_parse_error(tmp_path: Path) -> None:
    folder = tmp_path / "folder.fb2"
    folder.mkdir()
    with pytest.raises(ParseError):
        parse_fb2(folder)


# ---------------------------------------------------------------------------
# Hostile files
# ---------------------------------------------------------------------------

LAUGHS = """<!DOCTYPE FictionBook [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
"""


@pytest.mark.parametrize("where", ["body", "title"])
def test_billion_laughs(tmp_path: Path, where: str, timed: Callable[..., Any]) -> None:
    doc = fb2_document(prolog=LAUGHS, body="<p>&lol9;</p>" if where == "body" else "")
    if where == "title":
        doc = doc.replace("Сказка  о тесте", "&lol9;")
    path = tmp_path / "lol.fb2"
    path.write_text(doc, "utf-8")
    with pytest.raises(ParseError, match="unsafe XML"):
        timed(lambda: parse_fb2(path))


def test_external_entity(tmp_path: Path, timed: Callable[..., Any]) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    prolog = f'<!DOCTYPE FictionBook [<!ENTITY xxe SYSTEM "file://{secret}">]>\n'
    doc = fb2_document(prolog=prolog).replace("Сказка  о тесте", "&xxe;")
    path = tmp_path / "xxe.fb2"
    path.write_text(doc, "utf-8")
    with pytest.raises(ParseError, match="unsafe XML"):
        timed(lambda: parse_fb2(path))


def test_zip_bomb_member(tmp_path: Path, timed: Callable[..., Any]) -> None:
    doc = fb2_document(body="<p>" + " " * (80 * 1024 * 1024) + "</p>")
    path = tmp_path / "bomb.fb2.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.fb2", doc)
    assert path.stat().st_size < 1024 * 1024
    meta = timed(lambda: parse_fb2(path))  # read up to the cap, metadata from the head
    assert meta.title == "Сказка о тесте"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"plain text, not XML at all", "malformed XML"),
        (b"<html><body>hi</body></html>", "not an FB2"),
        (b"<FictionBook><body/></FictionBook>", "title-info"),
        (b"<FictionBook><description><title-info>", "malformed XML"),
        (b"\xff\xfe\x00garbage\x00", "malformed XML"),
    ],
)
def test_not_fb2(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.fb2"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=reason):
        parse_fb2(path)


def test_text_file_named_fb2_zip(tmp_path: Path) -> None:
    path = tmp_path / "bad.fb2.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ParseError, match="zip"):
        parse_fb2(path)

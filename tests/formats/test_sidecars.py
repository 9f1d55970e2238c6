"""Sidecar parsers: calibre metadata.opf, Audiobookshelf metadata.json, desc.txt, reader.txt."""

from __future__ import annotations

import json
import pickle
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shelfscan.formats.epub import metadata_from_opf
from shelfscan.formats.records import Chapter, Contributor, Identifier, ParseError, SeriesEntry
from shelfscan.formats.sidecars import (
    MAX_JSON_BYTES,
    MAX_TEXT_BYTES,
    SIDECAR_NAMES,
    parse_abs_metadata_json,
    parse_desc_txt,
    parse_metadata_opf,
    parse_reader_txt,
)
from shelfscan.formats.xmlsafe import UnsafeXMLError

ALICE_OPF = "calibre-library/Lewis Carroll/Alice's Adventures in Wonderland (17)/metadata.opf"


def test_sidecar_names() -> None:
    assert {"metadata.opf", "metadata.json", "desc.txt", "reader.txt"} <= SIDECAR_NAMES
    assert {"cover.jpg", "cover.jpeg", "cover.png", "cover.webp"} <= SIDECAR_NAMES
    assert {"folder.jpg", "folder.jpeg", "folder.png"} <= SIDECAR_NAMES
    assert all(name == name.lower() for name in SIDECAR_NAMES)
    assert "book.epub" not in SIDECAR_NAMES


# ---------------------------------------------------------------------------
# metadata.opf
# ---------------------------------------------------------------------------


def test_real_calibre_metadata_opf(corpus_dir: Path) -> None:
    meta = parse_metadata_opf((corpus_dir / ALICE_OPF).read_bytes())
    assert meta.format == "opf"
    assert meta.title == "Alice's Adventures in Wonderland"
    # calibre's own producer credit is not a person
    assert meta.contributors == (
        Contributor(name="Lewis Carroll", role="author", sort_name="Carroll, Lewis"),
    )
    assert meta.language == "eng"
    assert meta.publisher == "Feedbooks"
    assert meta.release_date == "1897-01-13"
    assert meta.genres == ("Fantasy", "Juvenile", "Fiction")
    assert meta.tags == ()
    assert meta.description is not None
    assert meta.description.startswith("Alice's Adventures in Wonderland (1865) is a novel")
    assert "<" not in meta.description
    assert Identifier("uuid", "cdcb34f1-d554-409b-8620-9a4a56c58c68") in meta.identifiers
    assert Identifier("calibre", "15") in meta.identifiers
    assert meta.chapters == ()
    assert meta.cover is None
    assert meta.series == ()


CALIBRE_OPF = """<?xml version='1.0' encoding='utf-8'?>
<package xmlns="http://www.idpf.org/2007/opf" unique-identifier="uuid_id" version="2.0">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">
    <dc:identifier opf:scheme="calibre" id="calibre_id">42</dc:identifier>
    <dc:identifier opf:scheme="uuid" id="uuid_id">0b6e4b6e-8e0e-4f5b-9c1a-3e2b8d1f0a11</dc:identifier>
    <dc:identifier opf:scheme="ISBN">0-306-40615-2</dc:identifier>
    <dc:identifier opf:scheme="AMAZON">B00ABCDEFG</dc:identifier>
    <dc:title>The Colour of Magic</dc:title>
    <dc:creator opf:file-as="Pratchett, Terry" opf:role="aut">Terry Pratchett</dc:creator>
    <dc:creator opf:role="nrt">Nigel Planer</dc:creator>
    <dc:contributor opf:file-as="calibre" opf:role="bkp">calibre (6.3.0) [https://calibre-ebook.com]</dc:contributor>
    <dc:date>1983-11-24T00:00:00+00:00</dc:date>
    <dc:description>&lt;div&gt;&lt;p&gt;The &lt;b&gt;first&lt;/b&gt; Discworld novel.&lt;/p&gt;&lt;p&gt;Rincewind!&lt;/p&gt;&lt;/div&gt;</dc:description>
    <dc:publisher>Colin Smythe</dc:publisher>
    <dc:language>eng</dc:language>
    <dc:subject>Fantasy</dc:subject>
    <dc:subject>Humour</dc:subject>
    <meta name="calibre:series" content="Discworld"/>
    <meta name="calibre:series_index" content="1.0"/>
    <meta name="calibre:rating" content="8"/>
    <meta name="calibre:title_sort" content="Colour of Magic, The"/>
    <meta name="calibre:timestamp" content="2020-01-01T00:00:00+00:00"/>
  </metadata>
  <guide><reference href="cover.jpg" title="Cover" type="cover"/></guide>
</package>
"""


def test_synthetic_calibre_opf() -> None:
    meta = parse_metadata_opf(CALIBRE_OPF.encode())
    assert meta.title == "The Colour of Magic"  # title_sort ignored
    assert meta.series == (SeriesEntry("Discworld", Decimal("1.0")),)
    assert meta.contributors == (
        Contributor("Terry Pratchett", "author", "Pratchett, Terry"),
        Contributor("Nigel Planer", "narrator", None),
    )
    assert meta.narrators == ("Nigel Planer",)
    assert meta.description == "The first Discworld novel.\n\nRincewind!"
    assert meta.language == "eng"
    assert meta.release_date == "1983-11-24"
    assert meta.genres == ("Fantasy", "Humour")
    assert meta.extra["rating"] == "8"
    assert Identifier("isbn_13", "9780306406157") in meta.identifiers
    assert Identifier("asin", "B00ABCDEFG") in meta.identifiers
    assert meta.cover is None
    assert pickle.loads(pickle.dumps(meta)) == meta  # records cross the process pool


def test_metadata_from_opf_is_shared_with_epub_rules() -> None:
    meta = metadata_from_opf(CALIBRE_OPF.encode(), fmt="something")
    assert meta.format == "something"
    # metadata_from_opf keeps every credit; the sidecar wrapper drops calibre's own
    assert any(c.role == "producer" for c in meta.contributors)


def test_minimal_opf_without_namespace_prefixes() -> None:
    opf = b"""<package><metadata><title xmlns="http://purl.org/dc/elements/1.1/">Bare</title>
    </metadata></package>"""
    meta = parse_metadata_opf(opf)
    assert meta.title == "Bare"


def test_opf_without_metadata_element() -> None:
    with pytest.raises(ParseError, match="no <metadata>"):
        parse_metadata_opf(b"<package><manifest/></package>")


@pytest.mark.parametrize(
    "data",
    [b"", b"not xml at all", b"<package><metadata><dc:title>x</package>", b"\xff\xfe\x00<"],
)
def test_malformed_opf(data: bytes) -> None:
    with pytest.raises(ParseError) as info:
        parse_metadata_opf(data)
    assert "\n" not in str(info.value)


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE package [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n"
    + '<package xmlns="http://www.idpf.org/2007/opf"><metadata'
    + ' xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>&lol9;</dc:title>'
    + "</metadata></package>"
)


def test_opf_entity_bomb_is_refused_fast() -> None:
    start = time.perf_counter()
    with pytest.raises(UnsafeXMLError):
        parse_metadata_opf(BILLION_LAUGHS.encode())
    assert time.perf_counter() - start < 1.0


def test_opf_external_entity_is_refused() -> None:
    opf = (
        '<?xml version="1.0"?>\n<!DOCTYPE package [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        '<package><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        "<dc:title>&xxe;</dc:title></metadata></package>"
    )
    with pytest.raises(ParseError) as info:
        parse_metadata_opf(opf.encode())
    assert "root:" not in str(info.value)


def test_opf_size_cap() -> None:
    padding = b"<!--" + b"x" * (5 * 1024 * 1024) + b"-->"
    with pytest.raises(ParseError, match="too large"):
        parse_metadata_opf(CALIBRE_OPF.encode() + padding)


# ---------------------------------------------------------------------------
# metadata.json (Audiobookshelf)
# ---------------------------------------------------------------------------


def abs_json(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


FULL_ABS = {
    "tags": ["Favourites", "Re-read"],
    "chapters": [
        {"id": 0, "start": 0, "end": 30.5, "title": "Opening Credits"},
        {"id": 1, "start": 30.5, "end": 1800, "title": "Chapter 1"},
        {"id": 2, "start": 1800, "end": 3600, "title": "Chapter 2"},
    ],
    "title": "The Way of Kings",
    "subtitle": "Book One of the Stormlight Archive",
    "authors": ["Brandon Sanderson"],
    "narrators": ["Michael Kramer", "Kate Reading"],
    "series": ["The Stormlight Archive #1"],
    "genres": ["Fantasy", "Epic"],
    "publishedYear": "2010",
    "publishedDate": None,
    "publisher": "Macmillan Audio",
    "description": "<p>Roshar is a world of stone and storms.</p><p>Uncanny tempests.</p>",
    "isbn": "978-0-7653-2635-5",
    "asin": "B003ZWFO7E",
    "language": "English",
    "explicit": False,
    "abridged": False,
}


def test_full_abs_metadata_json() -> None:
    meta = parse_abs_metadata_json(json.dumps(FULL_ABS, indent=2).encode())
    assert meta.format == "abs-json"
    assert meta.title == "The Way of Kings"
    assert meta.subtitle == "Book One of the Stormlight Archive"
    assert meta.contributors == (Contributor("Brandon Sanderson", "author"),)
    assert meta.narrators == ("Michael Kramer", "Kate Reading")
    assert meta.series == (SeriesEntry("The Stormlight Archive", Decimal(1)),)
    assert meta.genres == ("Fantasy", "Epic")
    assert meta.tags == ("Favourites", "Re-read")
    assert meta.release_date == "2010"
    assert meta.publisher == "Macmillan Audio"
    assert meta.description == "Roshar is a world of stone and storms.\n\nUncanny tempests."
    assert meta.language == "English"
    assert Identifier("isbn_13", "9780765326355") in meta.identifiers
    assert Identifier("asin", "B003ZWFO7E") in meta.identifiers
    assert meta.chapters == (
        Chapter("Opening Credits", start_s=0.0),
        Chapter("Chapter 1", start_s=30.5),
        Chapter("Chapter 2", start_s=1800.0),
    )
    assert meta.extra == {}
    assert pickle.loads(pickle.dumps(meta)) == meta


def test_abs_json_series_forms() -> None:
    meta = parse_abs_metadata_json(
        abs_json(
            series=[
                "Discworld #3",
                "Discworld - Witches #1.5",
                {"name": "Rincewind", "sequence": "2"},
                {"name": "Tiffany Aching", "sequence": None},
                {"name": "Omnibus", "sequence": "1-3"},
                "No Number",
                "C# Programming",
                "Discworld",  # duplicate name
                {"name": "", "sequence": "9"},
                {"sequence": "4"},
                42,
                None,
            ]
        )
    )
    assert meta.series == (
        SeriesEntry("Discworld", Decimal(3)),
        SeriesEntry("Discworld - Witches", Decimal("1.5")),
        SeriesEntry("Rincewind", Decimal(2)),
        SeriesEntry("Tiffany Aching", None),
        SeriesEntry("Omnibus", Decimal(1)),
        SeriesEntry("No Number", None),
        SeriesEntry("C# Programming", None),
        SeriesEntry("42", None),
    )


def test_abs_json_is_lenient_with_types() -> None:
    meta = parse_abs_metadata_json(
        abs_json(
            title=123,
            subtitle=["not", "a", "string"],
            authors="Terry Pratchett & Neil Gaiman",
            narrators=[{"name": "Stephen Briggs"}, None, 7.5, "", "stephen briggs"],
            series={"name": "Good Omens", "sequence": 1},
            genres="Fantasy, Humour; Satire",
            tags=None,
            publishedYear=1990,
            publisher={"name": "Gollancz"},
            description=["nope"],
            isbn="not an isbn",
            asin=12,
            language=None,
            chapters=[
                {"start": "0", "title": "Start"},
                {"start": "12.5", "title": None},
                {"start": float("nan"), "title": "NaN"},
                {"start": -1, "title": "negative"},
                {"start": True, "title": "bool"},
                {"title": "no start"},
                "not a chapter",
            ],
            explicit=True,
            abridged="yes",
        )
    )
    assert meta.title == "123"
    assert meta.subtitle is None
    assert [c.name for c in meta.contributors] == ["Terry Pratchett", "Neil Gaiman"]
    assert meta.narrators == ("Stephen Briggs", "7.5")
    assert meta.series == (SeriesEntry("Good Omens", Decimal(1)),)
    assert meta.genres == ("Fantasy", "Humour", "Satire")
    assert meta.tags == ()
    assert meta.release_date == "1990"
    assert meta.publisher is None
    assert meta.description is None
    assert meta.identifiers == ()
    assert meta.language is None
    assert meta.chapters == (Chapter("Start", start_s=0.0), Chapter("", start_s=12.5))
    assert meta.extra == {"explicit": "true"}


def test_abs_json_published_date() -> None:
    assert parse_abs_metadata_json(abs_json(publishedDate="2010-08-31")).release_date == (
        "2010-08-31"
    )
    both = abs_json(publishedYear="2010", publishedDate="2010-08-31")
    assert parse_abs_metadata_json(both).release_date == "2010-08-31"
    disagree = abs_json(publishedYear="2011", publishedDate="2010-08-31")
    assert parse_abs_metadata_json(disagree).release_date == "2011"
    assert parse_abs_metadata_json(abs_json(publishedYear="soon")).release_date is None


def test_abs_json_empty_object_and_bom() -> None:
    meta = parse_abs_metadata_json(b"\xef\xbb\xbf{}")
    assert meta.format == "abs-json"
    assert meta.title is None
    assert meta.contributors == ()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "invalid metadata.json"),
        (b"{", "invalid metadata.json"),
        (b'{"title": "x",}', "invalid metadata.json"),
        (b"[1, 2, 3]", "top level is a list"),
        (b'"just a string"', "top level is a str"),
        (b"null", "top level is a NoneType"),
        (b'{"title": "caf\xe9"}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid metadata.json"),
        (b'{"n": ' + b"9" * 5000 + b"}", "invalid metadata.json"),
    ],
)
def test_invalid_metadata_json(data: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message) as info:
        parse_abs_metadata_json(data)
    assert "\n" not in str(info.value)


def test_oversized_metadata_json_is_refused_without_parsing() -> None:
    huge = json.dumps({"title": "x", "description": "y" * (5 * 1024 * 1024)}).encode()
    assert len(huge) > MAX_JSON_BYTES
    start = time.perf_counter()
    with pytest.raises(ParseError, match="too large"):
        parse_abs_metadata_json(huge)
    assert time.perf_counter() - start < 0.1


def test_abs_json_caps_lists() -> None:
    meta = parse_abs_metadata_json(
        abs_json(
            genres=[f"g{i}" for i in range(10_000)],
            chapters=[{"start": i, "title": f"c{i}"} for i in range(20_000)],
        )
    )
    assert len(meta.genres) == 100
    assert len(meta.chapters) == 5000


# ---------------------------------------------------------------------------
# desc.txt and reader.txt
# ---------------------------------------------------------------------------


def test_desc_txt_utf8_plain_text_keeps_lines() -> None:
    text = "First line of the blurb.\r\n\r\n\r\n\r\nSecond   paragraph — ünïcode.\n"
    assert parse_desc_txt(text.encode()) == (
        "First line of the blurb.\n\nSecond paragraph — ünïcode."
    )


def test_desc_txt_encodings() -> None:
    assert parse_desc_txt("Café au lait".encode("cp1252")) == "Café au lait"
    assert parse_desc_txt(b"\xef\xbb\xbfWith BOM") == "With BOM"
    assert parse_desc_txt("Notepad “Unicode”".encode("utf-16")) == "Notepad “Unicode”"
    assert parse_desc_txt(b"undefined \x81 byte") == "undefined \ufffd byte"


def test_desc_txt_html_and_empty() -> None:
    assert parse_desc_txt(b"<p>One</p><p>Two &amp; three</p>") == "One\n\nTwo & three"
    assert parse_desc_txt(b"") is None
    assert parse_desc_txt(b" \n\t\r\n ") is None
    assert parse_desc_txt(b"\x00\x01\x02") is None


def test_desc_txt_size_cap() -> None:
    assert parse_desc_txt(b"x" * MAX_TEXT_BYTES) == "x" * MAX_TEXT_BYTES
    with pytest.raises(ParseError, match="too large"):
        parse_desc_txt(b"x" * (MAX_TEXT_BYTES + 1))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Jim Dale\n", ("Jim Dale",)),
        (b"Michael Kramer\nKate Reading\n", ("Michael Kramer", "Kate Reading")),
        (b"Michael Kramer, Kate Reading", ("Michael Kramer", "Kate Reading")),
        (b"Michael Kramer; Kate Reading & Tim Gerard Reynolds", ("Michael Kramer", "Kate Reading", "Tim Gerard Reynolds")),
        (b"Narrated by: Stephen Fry\r\n", ("Stephen Fry",)),
        (b"Read by Rosamund Pike and Juliet Stevenson", ("Rosamund Pike", "Juliet Stevenson")),
        (b"Jim Dale\njim dale\n\n  \n", ("Jim Dale",)),
        ("Andr\u00e9 Sogliuzzo".encode("cp1252"), ("André Sogliuzzo",)),
        (b"", ()),
    ],
)  # fmt: skip
def test_reader_txt(raw: bytes, expected: tuple[str, ...]) -> None:
    assert parse_reader_txt(raw) == expected


def test_reader_txt_caps() -> None:
    many = "\n".join(f"Narrator {i}" for i in range(1000)).encode()
    assert len(parse_reader_txt(many)) == 100
    with pytest.raises(ParseError, match="too large"):
        parse_reader_txt(b"x" * (MAX_TEXT_BYTES + 1))

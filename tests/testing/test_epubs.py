"""EPUBs built from an EpubSpec are valid zips that ebooklib and lxml read back."""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path
from typing import Any, Literal

import pytest
from ebooklib import epub
from lxml import etree
from PIL import Image

from shelfscan.testing.covers import cover_jpeg
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, epub_bytes, write_epub

OPF = "{http://www.idpf.org/2007/opf}"
Style = Literal["epub2", "epub3"]
NASTY_TITLE = 'Émile & <Søren>: "Zoë\'s" Café'


def _spec(style: Style, **changes: Any) -> EpubSpec:
    base: dict[str, Any] = {
        "title": NASTY_TITLE,
        "creators": (
            CreatorSpec("Émile Dvořák", "aut", "Dvořák, Émile"),
            CreatorSpec("Zoë Müller", "trl", "Müller, Zoë"),
            CreatorSpec("Søren O'Connor", "ill"),
        ),
        "style": style,
        "subtitle": "A Tale of Kraków",
        "subjects": ("Fantasy", "Health & Fitness", "Science Fiction"),
        "series": "The <Hollow> & Crown",
        "series_index": "3.5",
        "isbn": "9780306406157",
        "uuid": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "language": "de",
        "publisher": "Müller & Söhne",
        "date": "2001-05-03",
        "description": "<p>A <b>bold</b> tale &amp; more.</p>",
        "cover": cover_jpeg(5, size=(120, 180), target_bytes=5_000),
        "chapters": (
            ("Chapter 1: The Café", "First paragraph & more.\n\nSecond <paragraph>."),
            ("Chapter 2", "Only one paragraph here, with ümlauts."),
        ),
    }
    base.update(changes)
    return EpubSpec(**base)


def _read(tmp_path: Path, data: bytes) -> epub.EpubBook:
    path = tmp_path / "book.epub"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ebooklib's own deprecation chatter
        return epub.read_epub(str(path))


@pytest.mark.parametrize("style", ["epub2", "epub3"])
def test_zip_container_is_valid_and_reproducible(style: Style) -> None:
    data = epub_bytes(_spec(style))
    assert data == epub_bytes(_spec(style))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None  # every CRC matches
        infos = archive.infolist()
        assert infos[0].filename == "mimetype"
        assert infos[0].compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype") == b"application/epub+zip"
        assert data[30:38] == b"mimetype"  # the name right after the first local header
        assert all(info.date_time == (2020, 1, 1, 0, 0, 0) for info in infos)
        assert all(info.compress_type == zipfile.ZIP_DEFLATED for info in infos[1:])
        names = archive.namelist()
        for name in names:
            if name.endswith((".xml", ".opf", ".ncx", ".xhtml")):
                etree.fromstring(archive.read(name))  # well-formed, escaping included
        chapters = [n for n in names if "chapter_" in n]
        assert len(chapters) == 2
        assert any(n.endswith(".css") for n in names)
        assert any("titlepage" in n for n in names)
        if style == "epub2":
            assert "content.opf" in names and "toc.ncx" in names
        else:
            assert {"OEBPS/content.opf", "OEBPS/nav.xhtml", "OEBPS/toc.ncx"} <= set(names)


def test_epub2_metadata_is_calibre_style(tmp_path: Path) -> None:
    spec = _spec("epub2")
    book = _read(tmp_path, epub_bytes(spec))
    # EPUB 2 has no subtitle element; calibre folds it into the title.
    assert book.get_metadata("DC", "title")[0][0] == f"{NASTY_TITLE}: A Tale of Kraków"
    creators = book.get_metadata("DC", "creator")
    assert [name for name, _ in creators] == [c.name for c in spec.creators]
    assert [attrs[f"{OPF}role"] for _, attrs in creators] == ["aut", "trl", "ill"]
    assert creators[0][1][f"{OPF}file-as"] == "Dvořák, Émile"
    identifiers = {
        attrs.get(f"{OPF}scheme"): value for value, attrs in book.get_metadata("DC", "identifier")
    }
    assert identifiers == {"uuid": spec.uuid, "ISBN": spec.isbn}
    assert [s for s, _ in book.get_metadata("DC", "subject")] == list(spec.subjects)
    assert book.get_metadata("DC", "description")[0][0] == spec.description
    assert book.get_metadata("DC", "publisher")[0][0] == "Müller & Söhne"
    metas = {
        attrs.get("name"): attrs.get("content") for _, attrs in book.get_metadata("OPF", "meta")
    }
    assert metas["calibre:series"] == spec.series
    assert metas["calibre:series_index"] == "3.5"
    assert metas["cover"] == "cover-img"
    assert [link.title for link in book.toc] == ["Chapter 1: The Café", "Chapter 2"]


def test_epub3_metadata_uses_refines(tmp_path: Path) -> None:
    spec = _spec("epub3")
    data = epub_bytes(spec)
    book = _read(tmp_path, data)
    titles = book.get_metadata("DC", "title")
    assert [t for t, _ in titles] == [NASTY_TITLE, "A Tale of Kraków"]
    assert [name for name, _ in book.get_metadata("DC", "creator")] == [
        c.name for c in spec.creators
    ]
    identifiers = [value for value, _ in book.get_metadata("DC", "identifier")]
    assert identifiers == [f"urn:uuid:{spec.uuid}", f"urn:isbn:{spec.isbn}"]
    assert [link.title for link in book.toc] == ["Chapter 1: The Café", "Chapter 2"]

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        opf = etree.fromstring(archive.read("OEBPS/content.opf"))
        nav = etree.fromstring(archive.read("OEBPS/nav.xhtml"))
    refined: dict[tuple[str, str], str] = {}
    for meta in opf.iter(f"{OPF}meta"):
        if meta.get("refines"):
            refined[(meta.get("refines"), meta.get("property"))] = meta.text or ""
    assert refined[("#c1", "role")] == "aut"
    assert refined[("#c2", "role")] == "trl"
    assert refined[("#c1", "file-as")] == "Dvořák, Émile"
    assert refined[("#c3", "display-seq")] == "3"
    assert refined[("#s1", "collection-type")] == "series"
    assert refined[("#s1", "group-position")] == "3.5"
    assert refined[("#subtitle", "title-type")] == "subtitle"
    collection = opf.find(f".//{OPF}meta[@property='belongs-to-collection']")
    assert collection is not None and collection.text == spec.series
    calibre = opf.find(f".//{OPF}meta[@name='calibre:series']")
    assert calibre is not None and calibre.get("content") == spec.series
    cover_item = opf.find(f".//{OPF}item[@properties='cover-image']")
    assert cover_item is not None and cover_item.get("href") == "images/cover.jpg"
    xhtml = "{http://www.w3.org/1999/xhtml}"
    toc = nav.find(f".//{xhtml}nav[@{{http://www.idpf.org/2007/ops}}type='toc']")
    assert toc is not None
    assert [a.text for a in toc.iter(f"{xhtml}a")] == ["Chapter 1: The Café", "Chapter 2"]


@pytest.mark.parametrize("style", ["epub2", "epub3"])
def test_cover_and_chapter_text_round_trip(style: Style, tmp_path: Path) -> None:
    spec = _spec(style)
    book = _read(tmp_path, epub_bytes(spec))
    images = [item for item in book.get_items() if item.media_type == "image/jpeg"]
    assert len(images) == 1 and images[0].get_content() == spec.cover
    Image.open(io.BytesIO(images[0].get_content())).load()
    chapters = [i for i in book.get_items() if "chapter_001" in i.get_name()]
    text = chapters[0].get_content().decode()
    assert "<p>First paragraph &amp; more.</p>" in text
    assert "<p>Second &lt;paragraph&gt;.</p>" in text


@pytest.mark.parametrize("style", ["epub2", "epub3"])
def test_minimal_spec_without_cover_or_chapters(style: Style, tmp_path: Path) -> None:
    spec = EpubSpec(title="Bare", creators=(CreatorSpec("Anna Nowak"),), style=style)
    path = tmp_path / "sub" / "bare.epub"
    write_epub(path, spec)
    book = _read(tmp_path, path.read_bytes())
    assert book.get_metadata("DC", "title")[0][0] == "Bare"
    assert book.get_metadata("DC", "identifier")  # a derived uuid still identifies it
    assert not [i for i in book.get_items() if i.media_type == "image/jpeg"]


def test_control_characters_are_dropped_not_written(tmp_path: Path) -> None:
    spec = _spec("epub3", title="Bad\x00Title\x1f", description=None)
    with zipfile.ZipFile(io.BytesIO(epub_bytes(spec))) as archive:
        opf = etree.fromstring(archive.read("OEBPS/content.opf"))
    title = opf.find(".//{http://purl.org/dc/elements/1.1/}title")
    assert title is not None and title.text == "BadTitle"

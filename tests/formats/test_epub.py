"""parse_epub against the real corpus, hand-built EPUBs, a third-party writer and hostile files."""

from __future__ import annotations

import dataclasses
import io
import random
import struct
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from shelfscan.formats.epub import MAX_CHAPTERS, parse_epub
from shelfscan.formats.records import Identifier, ParseError
from tests.formats.helpers import corpus_keys

# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------

CONTAINER = """<?xml version="1.0" encoding="UTF-8"?>
<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">
  <rootfiles>
    <rootfile full-path="{opf}" media-type="application/oebps-package+xml"/>
  </rootfiles>
</container>
"""

NAV_TEMPLATE = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">
<head><title>Contents</title></head>
<body>
{body}
</body>
</html>
"""


def png_bytes(width: int = 3, height: int = 4) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "blue").save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(width: int = 5, height: int = 6) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buf, "JPEG")
    return buf.getvalue()


def write_zip(path: Path, files: dict[str, bytes | str], *, mimetype: bool = True) -> Path:
    """Write an EPUB-shaped zip: mimetype first and stored, everything else deflated."""
    with zipfile.ZipFile(path, "w") as zf:
        if mimetype:
            zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, data in files.items():
            zf.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def write_epub(
    path: Path,
    opf: str,
    extra: dict[str, bytes | str] | None = None,
    *,
    opf_path: str = "OEBPS/content.opf",
) -> Path:
    files: dict[str, bytes | str] = {
        "META-INF/container.xml": CONTAINER.format(opf=opf_path),
        opf_path: opf,
    }
    files.update(extra or {})
    return write_zip(path, files)


def opf_document(metadata: str, manifest: str = "", spine: str = "", version: str = "3.0") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<package xmlns="http://www.idpf.org/2007/opf" version="{version}" unique-identifier="uid">
  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">
{metadata}
  </metadata>
  <manifest>
{manifest}
  </manifest>
  <spine{spine}>
    <itemref idref="ch1"/>
  </spine>
</package>
"""


def make_epub2_calibre(path: Path, *, with_cover: bool = True) -> Path:
    """An EPUB 2 package as calibre writes it: opf:role, opf:file-as, calibre:series, NCX."""
    metadata = """
    <dc:title>The Calibre Book</dc:title>
    <dc:creator opf:role="aut" opf:file-as="Doe, Jane">Jane Doe</dc:creator>
    <dc:creator opf:file-as="Roe, Rick">Rick  Roe</dc:creator>
    <dc:creator opf:role="trl">Tom Translator</dc:creator>
    <dc:contributor opf:role="bkp" opf:file-as="calibre">calibre (6.0.0)</dc:contributor>
    <dc:contributor opf:role="nrt">Nina Narrator</dc:contributor>
    <dc:creator opf:role="aut">   </dc:creator>
    <dc:identifier opf:scheme="calibre" id="calibre_id">42</dc:identifier>
    <dc:identifier opf:scheme="uuid" id="uid">5EDEC18F-8BC8-40C2-B612-E1ADB61C82AE</dc:identifier>
    <dc:identifier opf:scheme="ISBN">0-306-40615-2</dc:identifier>
    <dc:identifier opf:scheme="ISBN">0-306-40615-3</dc:identifier>
    <dc:identifier opf:scheme="MOBI-ASIN">B00TEST123</dc:identifier>
    <dc:identifier opf:scheme="GOODREADS">12345</dc:identifier>
    <dc:identifier opf:scheme="ISBN">978-0-306-40615-7</dc:identifier>
    <dc:date opf:event="modification">2015-04-27</dc:date>
    <dc:date opf:event="publication">2012-03-04T22:00:00+00:00</dc:date>
    <dc:publisher>Calibre Press</dc:publisher>
    <dc:language>de</dc:language>
    <dc:subject>Science Fiction</dc:subject>
    <dc:subject> Space\tOpera </dc:subject>
    <dc:description>&lt;div&gt;&lt;p&gt;A &lt;b&gt;bold&lt;/b&gt;
        tale.&lt;/p&gt;&lt;/div&gt;</dc:description>
    <meta name="calibre:series" content="Chronicles of Test"/>
    <meta name="calibre:series_index" content="3.5"/>
    <meta name="cover" content="cover"/>
"""
    manifest = """
    <item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>
    <item id="cover" href="images/cover.jpg" media-type="image/jpeg"/>
    <item id="ch1" href="text/ch1.xhtml" media-type="application/xhtml+xml"/>
"""
    ncx = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE ncx PUBLIC "-//NISO//DTD ncx 2005-1//EN" "http://www.daisy.org/z3986/2005/ncx-2005-1.dtd">
<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1">
  <head><meta name="dtb:uid" content="x"/></head>
  <docTitle><text>The Calibre Book</text></docTitle>
  <navMap>
    <navPoint id="n1" playOrder="1"><navLabel><text>Part One</text></navLabel>
      <content src="text/ch1.xhtml"/>
      <navPoint id="n2" playOrder="2"><navLabel><text>Chapter 1</text></navLabel>
        <content src="text/ch1.xhtml#c1"/></navPoint>
      <navPoint id="n3" playOrder="3"><navLabel><text>Chapter 2</text></navLabel>
        <content src="text/ch%202.xhtml"/></navPoint>
    </navPoint>
    <navPoint id="n4" playOrder="4"><navLabel><text>Epilogue</text></navLabel>
      <content src="text/end.xhtml"/></navPoint>
  </navMap>
</ncx>
"""
    extra: dict[str, bytes | str] = {
        "OEBPS/toc.ncx": ncx,
        "OEBPS/text/ch1.xhtml": "<html/>",
    }
    if with_cover:
        extra["OEBPS/images/cover.jpg"] = jpeg_bytes()
    opf = opf_document(metadata, manifest, ' toc="ncx"', version="2.0")
    return write_epub(path, opf, extra)


EPUB3_METADATA = """
    <dc:identifier id="uid">urn:uuid:12C1DF3E-DF35-4FCF-918B-643FF15A7870</dc:identifier>
    <dc:identifier id="isbn">978-0-306-40615-7</dc:identifier>
    <meta refines="#isbn" property="identifier-type" scheme="onix:codelist5">15</meta>
    <dc:title id="t-sub">Being a Subtitle</dc:title>
    <meta refines="#t-sub" property="title-type">subtitle</meta>
    <dc:title id="t-main">The Main Title</dc:title>
    <meta refines="#t-main" property="title-type">main</meta>
    <dc:creator id="c-second">Second Author</dc:creator>
    <meta refines="#c-second" property="role" scheme="marc:relators">aut</meta>
    <meta refines="#c-second" property="file-as">Author, Second</meta>
    <meta refines="#c-second" property="display-seq">2</meta>
    <dc:creator id="c-first">First Author</dc:creator>
    <meta refines="#c-first" property="role" scheme="marc:relators">aut</meta>
    <meta refines="#c-first" property="file-as">Author, First</meta>
    <meta refines="#c-first" property="display-seq">1</meta>
    <dc:contributor id="c-narr">Nora Voice</dc:contributor>
    <meta refines="#c-narr" property="role" scheme="marc:relators">nrt</meta>
    <dc:contributor id="c-ed">Ed Itor</dc:contributor>
    <meta refines="#c-ed" property="role" scheme="marc:relators">edt</meta>
    <dc:contributor id="c-odd">Odd Role</dc:contributor>
    <meta refines="#c-odd" property="role" scheme="marc:relators">MRK</meta>
    <dc:contributor>Plain Helper</dc:contributor>
    <meta property="belongs-to-collection" id="coll-series">The Saga</meta>
    <meta refines="#coll-series" property="collection-type">series</meta>
    <meta refines="#coll-series" property="group-position">2.5</meta>
    <meta property="belongs-to-collection" id="coll-set">Summer Reading</meta>
    <meta refines="#coll-set" property="collection-type">set</meta>
    <meta property="belongs-to-collection" id="coll-none">Untyped Shelf</meta>
    <meta name="calibre:series" content="the saga"/>
    <dc:subject>Fantasy</dc:subject>
    <dc:subject>  Adventure  </dc:subject>
    <dc:description>&lt;p&gt;First &amp;amp; best.&lt;/p&gt;
        &lt;p&gt;Second&lt;br/&gt;line&lt;/p&gt;</dc:description>
    <dc:publisher>Pub&#x9;
        House</dc:publisher>
    <dc:date>2010-05-03T00:00:00+00:00</dc:date>
    <dc:language>en-US</dc:language>
    <dc:language>fr</dc:language>
    <meta property="dcterms:modified">2020-01-01T00:00:00Z</meta>
"""

EPUB3_MANIFEST = """
    <item id="nav" href="nav%20doc.xhtml" properties="nav" media-type="application/xhtml+xml"/>
    <item id="cover-img" href="images/cover%20art.png" properties="cover-image"
          media-type="image/png"/>
    <item id="ch1" href="text/ch1.xhtml" media-type="application/xhtml+xml"/>
"""

EPUB3_NAV = NAV_TEMPLATE.format(
    body="""
<nav epub:type="landmarks"><ol><li><a href="text/ch1.xhtml">Start here</a></li></ol></nav>
<nav epub:type="toc" id="toc">
  <h1>Contents</h1>
  <ol>
    <li><a href="text/ch1.xhtml">Part <i>One</i></a>
      <ol>
        <li><a href="text/ch1.xhtml#s1">Section 1.1</a></li>
        <li><span>Section 1.2</span>
          <ol><li><a href="text/ch%202.xhtml#deep">Deep &amp; nested</a></li></ol>
        </li>
      </ol>
    </li>
    <li><a href="../OEBPS/text/end.xhtml">Epilogue</a></li>
  </ol>
</nav>
"""
)


def make_epub3(path: Path, *, nav: str = EPUB3_NAV, metadata: str = EPUB3_METADATA) -> Path:
    """An EPUB 3 package with refines roles, display-seq, collections and a nested nav."""
    opf = opf_document(metadata, EPUB3_MANIFEST)
    extra: dict[str, bytes | str] = {
        "OEBPS/nav doc.xhtml": nav,
        "OEBPS/images/cover art.png": png_bytes(),
        "OEBPS/text/ch1.xhtml": "<html/>",
    }
    return write_epub(path, opf, extra)


def minimal_opf(title: str = "Minimal", manifest: str = "", meta: str = "") -> str:
    return opf_document(f"<dc:title>{title}</dc:title>{meta}", manifest)


# ---------------------------------------------------------------------------
# Real files
# ---------------------------------------------------------------------------


CORPUS_EPUBS = corpus_keys(lambda k, v: k.endswith(".epub") and v.get("format") == "epub")


def test_corpus_lists_every_epub(corpus_dir: Path, corpus_truth: dict[str, dict[str, Any]]) -> None:
    on_disk = {
        str(p.relative_to(corpus_dir))
        for p in corpus_dir.rglob("*.epub")
        if p.parts[len(corpus_dir.parts)] in ("epub", "calibre-library")
    }
    assert on_disk == set(CORPUS_EPUBS)
    assert any(k.startswith("calibre-library/") for k in CORPUS_EPUBS)


@pytest.mark.parametrize("key", CORPUS_EPUBS)
def test_corpus_epub_matches_truth(
    key: str, corpus_dir: Path, corpus_truth: dict[str, dict[str, Any]]
) -> None:
    truth = corpus_truth[key]
    meta = parse_epub(corpus_dir / key)

    assert meta.format == truth["format"]
    assert meta.title == truth["title"]
    assert [c.name for c in meta.contributors if c.role == "author"] == truth.get("authors", [])
    assert meta.language == truth["language"]
    if "series" in truth:
        assert [s.name for s in meta.series] == [truth["series"]]
        assert meta.series[0].number == Decimal(str(truth["series_index"]))
    else:
        assert meta.series == ()
    isbn13 = [i.value for i in meta.identifiers if i.type == "isbn_13"]
    assert isbn13 == ([truth["isbn"]] if "isbn" in truth else [])
    # truth counts every ToC entry, nested ones included (MANIFEST "N entries in all").
    assert len(meta.chapters) == truth["chapters"]
    assert (meta.cover is not None) == truth["has_cover"]
    if meta.cover is not None:
        assert meta.cover.data and meta.cover.mime and meta.cover.mime.startswith("image/")


@pytest.mark.parametrize("key", CORPUS_EPUBS)
def test_corpus_without_chapters_keeps_metadata(key: str, corpus_dir: Path) -> None:
    full = parse_epub(corpus_dir / key)
    fast = parse_epub(corpus_dir / key, with_chapters=False)
    assert fast.chapters == ()
    assert fast == dataclasses.replace(full, chapters=())


def test_corpus_details(corpus_dir: Path) -> None:
    """Spot checks of fields the truth file does not carry, from the MANIFEST notes."""
    arabic = parse_epub(corpus_dir / "epub/regime-anticancer-arabic.epub")
    roles = [(c.name, c.role) for c in arabic.contributors]
    assert ("Marina Khalil Fayad", "translator") in roles
    assert arabic.publisher == "Hachette Antoine"
    assert arabic.release_date == "2012"

    mars = parse_epub(corpus_dir / "epub/edgar-rice-burroughs_a-princess-of-mars.epub")
    assert mars.cover is not None and mars.cover.mime == "image/svg+xml"
    assert "Princesses--Fiction" in mars.genres
    assert mars.chapters[5].level == 1 and mars.chapters[5].title == "I: On the Arizona Hills"
    assert mars.chapters[5].href == "epub/text/chapter-1.xhtml"

    wells = parse_epub(corpus_dir / "epub/h-g-wells_the-time-machine.epub")
    assert wells.description is not None and "<" not in wells.description
    assert wells.description.startswith("The Time Machine is the novel")

    deu = parse_epub(corpus_dir / "epub/calibre-quick-start-deu.epub")
    assert deu.description == "Eine kurze Einführung in Calibre"
    assert deu.cover is not None and deu.cover.mime == "image/jpeg"  # href "../images/cover.jpg"
    assert Identifier("calibre", "5edec18f-8bc8-40c2-b612-e1adb61c82ae") in deu.identifiers
    assert Identifier("uuid", "2c3272a4-731b-4348-909d-6f38b97b18eb") in deu.identifiers
    assert deu.genres == ("calibre", "Anleitung")

    eng3 = parse_epub(corpus_dir / "epub/eng3.epub")
    assert eng3.series == ()  # untyped belongs-to-collection is not a series
    assert Identifier("google", "B20CyAEACAAJ") in eng3.identifiers

    theft = parse_epub(corpus_dir / "epub/The Incomplete Theft - Ralph Burke.epub")
    assert Identifier("uri", "http://www.gutenberg.org/65659") in theft.identifiers

    volume = parse_epub(corpus_dir / "epub/TitleWithVolume.epub")
    assert volume.genres == ("Genre1", "Genre2")  # one dc:subject "Genre1, Genre2", split
    assert volume.sort_title is None  # no file-as, no calibre:title_sort: computed later

    deu = parse_epub(corpus_dir / "epub/calibre-quick-start-deu.epub")
    assert deu.sort_title == "Kurzanleitung"  # calibre:title_sort
    mars = parse_epub(corpus_dir / "epub/edgar-rice-burroughs_a-princess-of-mars.epub")
    assert mars.sort_title == "Princess of Mars, A"  # the title's refines file-as
    assert mars.genres[0].startswith("Carter, John")  # LCSH headings are never split
    japanese = parse_epub(corpus_dir / "epub/mymedia_lite.epub")
    assert japanese.sort_title == "ガリバンノハナシ"  # the katakana reading sorts the title
    arabic = parse_epub(corpus_dir / "epub/regime-anticancer-arabic.epub")
    # "mrk" (markup editor) is a production credit, not a raw code in the catalogue.
    assert ("Vincent Gros", "producer") in [(c.name, c.role) for c in arabic.contributors]
    assert volume.release_date == "2021-04-05"


# ---------------------------------------------------------------------------
# Synthetic books
# ---------------------------------------------------------------------------


def test_epub2_calibre_style(tmp_path: Path) -> None:
    meta = parse_epub(make_epub2_calibre(tmp_path / "calibre.epub"))
    assert meta.format == "epub"
    assert meta.title == "The Calibre Book"
    assert [(c.name, c.role, c.sort_name) for c in meta.contributors] == [
        ("Jane Doe", "author", "Doe, Jane"),
        ("Rick Roe", "author", "Roe, Rick"),
        ("Tom Translator", "translator", None),
        ("calibre (6.0.0)", "producer", "calibre"),
        ("Nina Narrator", "narrator", None),
    ]
    assert meta.narrators == ("Nina Narrator",)
    assert [(s.name, s.number) for s in meta.series] == [("Chronicles of Test", Decimal("3.5"))]
    assert meta.identifiers == (
        Identifier("calibre", "42"),
        Identifier("uuid", "5edec18f-8bc8-40c2-b612-e1adb61c82ae"),
        Identifier("isbn_10", "0306406152"),
        Identifier("isbn_13", "9780306406157"),
        Identifier("asin", "B00TEST123"),
        Identifier("goodreads", "12345"),
    )
    assert meta.release_date == "2012-03-04"
    assert meta.publisher == "Calibre Press"
    assert meta.language == "de"
    assert meta.genres == ("Science Fiction", "Space Opera")
    assert meta.description == "A bold tale."
    assert meta.cover is not None and meta.cover.mime == "image/jpeg"
    assert meta.cover.data == jpeg_bytes()
    assert [(c.title, c.level, c.href) for c in meta.chapters] == [
        ("Part One", 0, "OEBPS/text/ch1.xhtml"),
        ("Chapter 1", 1, "OEBPS/text/ch1.xhtml#c1"),
        ("Chapter 2", 1, "OEBPS/text/ch 2.xhtml"),
        ("Epilogue", 0, "OEBPS/text/end.xhtml"),
    ]
    assert meta.extra["epub_version"] == "2.0"


def test_epub3_refines_collections_and_nav(tmp_path: Path) -> None:
    meta = parse_epub(make_epub3(tmp_path / "book.epub"))
    assert meta.title == "The Main Title"
    assert meta.subtitle == "Being a Subtitle"
    assert [(c.name, c.role, c.sort_name) for c in meta.contributors] == [
        ("First Author", "author", "Author, First"),
        ("Second Author", "author", "Author, Second"),
        ("Nora Voice", "narrator", None),
        ("Ed Itor", "editor", None),
        ("Odd Role", "producer", None),  # MRK, markup editor: a production credit
        ("Plain Helper", "contributor", None),
    ]
    assert meta.narrators == ("Nora Voice",)
    # The "set" and untyped collections are reading lists; calibre's duplicate loses to the
    # numbered EPUB 3 entry.
    assert meta.series == (meta.series[0],)
    assert (meta.series[0].name, meta.series[0].number) == ("The Saga", Decimal("2.5"))
    assert meta.identifiers == (
        Identifier("uuid", "12c1df3e-df35-4fcf-918b-643ff15a7870"),
        Identifier("isbn_13", "9780306406157"),
    )
    assert meta.genres == ("Fantasy", "Adventure")
    assert meta.description == "First & best.\n\nSecond\nline"
    assert meta.publisher == "Pub House"
    assert meta.release_date == "2010-05-03"
    assert meta.language == "en-US"
    assert meta.extra == {"epub_version": "3.0", "modified": "2020-01-01T00:00:00Z"}
    assert meta.cover is not None
    assert meta.cover.mime == "image/png" and meta.cover.data == png_bytes()
    assert [(c.title, c.level, c.href) for c in meta.chapters] == [
        ("Part One", 0, "OEBPS/text/ch1.xhtml"),
        ("Section 1.1", 1, "OEBPS/text/ch1.xhtml#s1"),
        ("Section 1.2", 1, None),
        ("Deep & nested", 2, "OEBPS/text/ch 2.xhtml#deep"),
        ("Epilogue", 0, "OEBPS/text/end.xhtml"),
    ]


def test_calibre_series_kept_when_epub3_collection_has_no_number(tmp_path: Path) -> None:
    meta_xml = """
    <dc:title>T</dc:title>
    <meta name="calibre:series" content="Saga"/>
    <meta name="calibre:series_index" content="1.0"/>
    <meta property="belongs-to-collection" id="c">SAGA</meta>
    <meta refines="#c" property="collection-type">series</meta>
    <meta property="belongs-to-collection" id="d">Other Series</meta>
    <meta refines="#d" property="collection-type">series</meta>
    <meta refines="#d" property="group-position">7</meta>
"""
    meta = parse_epub(write_epub(tmp_path / "s.epub", opf_document(meta_xml)))
    assert [(s.name, s.number) for s in meta.series] == [
        ("Saga", Decimal("1.0")),
        ("Other Series", Decimal("7")),
    ]


def test_odd_refinement_values_do_not_break_parsing(tmp_path: Path) -> None:
    meta_xml = """
    <dc:title>T</dc:title>
    <dc:creator id="a">Odd Seq</dc:creator>
    <meta refines="#a" property="display-seq">²</meta>
    <dc:creator id="b">Huge Seq</dc:creator>
    <meta refines="#b" property="display-seq">99999999999999999999999999</meta>
    <meta property="belongs-to-collection">No Id Collection</meta>
    <meta property="belongs-to-collection" id="s">Weird Number</meta>
    <meta refines="#s" property="collection-type">series</meta>
    <meta refines="#s" property="group-position">NaN</meta>
    <meta name="calibre:series" content="Huge"/>
    <meta name="calibre:series_index" content="1e999999"/>
"""
    meta = parse_epub(write_epub(tmp_path / "odd.epub", opf_document(meta_xml)))
    assert [c.name for c in meta.contributors] == ["Odd Seq", "Huge Seq"]
    assert [(s.name, s.number) for s in meta.series] == [("Weird Number", None), ("Huge", None)]


def test_first_title_without_refinements_and_kepub_format(tmp_path: Path) -> None:
    opf = opf_document("<dc:title> First </dc:title><dc:title>Second</dc:title>")
    meta = parse_epub(write_epub(tmp_path / "book.kepub.epub", opf))
    assert meta.format == "kepub"
    assert meta.title == "First"
    assert meta.subtitle is None
    assert meta.contributors == () and meta.cover is None and meta.chapters == ()


def test_date_preferences(tmp_path: Path) -> None:
    meta_xml = """<dc:title>T</dc:title>
    <dc:date opf:event="conversion">2021-04-05T23:00:07.039989+00:00</dc:date>
    <dc:date opf:event="original-publication">1897</dc:date>
    <dc:date>0101-01-01T00:00:00+00:00</dc:date>"""
    meta = parse_epub(write_epub(tmp_path / "d.epub", opf_document(meta_xml)))
    assert meta.release_date == "1897"  # calibre's unknown date is skipped, conversion ignored


def test_with_chapters_false_reads_no_toc(tmp_path: Path) -> None:
    path = make_epub3(tmp_path / "book.epub")
    fast = parse_epub(path, with_chapters=False)
    full = parse_epub(path)
    assert fast.chapters == () and len(full.chapters) == 5
    assert fast.title == full.title and fast.cover == full.cover


def test_ebooklib_written_epub(tmp_path: Path) -> None:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("urn:isbn:9780306406157")
    book.set_title("Written By Ebooklib")
    book.set_language("en")
    book.add_author("Alice Author", file_as="Author, Alice", role="aut", uid="author1")
    book.add_author("Ian Illustrator", role="ill", uid="ill1")
    book.set_cover("cover.jpg", jpeg_bytes(8, 9))
    one = epub.EpubHtml(title="Chapter One", file_name="chap_01.xhtml", lang="en")
    one.content = "<h1>One</h1><p>x</p>"
    two = epub.EpubHtml(title="Chapter Two", file_name="chap_02.xhtml", lang="en")
    two.content = "<h1>Two</h1><p>y</p>"
    book.add_item(one)
    book.add_item(two)
    book.toc = (epub.Link("chap_01.xhtml", "Chapter One", "c1"), (epub.Section("Part Two"), (two,)))
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", one, two]
    target = tmp_path / "ebooklib.epub"
    epub.write_epub(str(target), book, {})

    meta = parse_epub(target)
    assert meta.title == "Written By Ebooklib"
    assert meta.language == "en"
    assert [(c.name, c.role, c.sort_name) for c in meta.contributors] == [
        ("Alice Author", "author", "Author, Alice"),
        ("Ian Illustrator", "illustrator", None),
    ]
    assert meta.identifiers == (Identifier("isbn_13", "9780306406157"),)
    assert meta.cover is not None and meta.cover.mime == "image/jpeg"
    assert meta.cover.data == jpeg_bytes(8, 9)
    assert [(c.title, c.level) for c in meta.chapters] == [
        ("Chapter One", 0),
        ("Part Two", 0),
        ("Chapter Two", 1),
    ]
    assert meta.chapters[0].href == "EPUB/chap_01.xhtml"


# ---------------------------------------------------------------------------
# Covers
# ---------------------------------------------------------------------------


def test_cover_from_meta_href_and_name_guess(tmp_path: Path) -> None:
    by_href = write_epub(
        tmp_path / "href.epub",
        minimal_opf(meta='<meta name="cover" content="pics/front.png"/>'),
        {"OEBPS/pics/front.png": png_bytes()},
    )
    cover = parse_epub(by_href).cover
    assert cover is not None and cover.mime == "image/png"

    guessed = write_epub(
        tmp_path / "guess.epub",
        minimal_opf(
            manifest='<item id="x" href="img/Cover.GIF" media-type="image/gif"/>'
            '<item id="y" href="img/other.png" media-type="image/png"/>'
        ),
        {"OEBPS/img/Cover.GIF": b"GIF89a\x02\x00\x03\x00" + b"\x00" * 20},
    )
    cover = parse_epub(guessed).cover
    assert cover is not None and cover.mime == "image/gif"


def test_cover_meta_pointing_at_xhtml_falls_back_to_image(tmp_path: Path) -> None:
    manifest = (
        '<item id="cover" href="cover.xhtml" media-type="application/xhtml+xml"/>'
        '<item id="img" href="images/cover-image.jpg" media-type="image/jpeg"/>'
    )
    path = write_epub(
        tmp_path / "c.epub",
        minimal_opf(manifest=manifest, meta='<meta name="cover" content="cover"/>'),
        {"OEBPS/cover.xhtml": "<html/>", "OEBPS/images/cover-image.jpg": jpeg_bytes()},
    )
    cover = parse_epub(path).cover
    assert cover is not None and cover.data == jpeg_bytes()


def test_cover_missing_from_zip_is_not_an_error(tmp_path: Path) -> None:
    manifest = '<item id="c" href="gone.jpg" properties="cover-image" media-type="image/jpeg"/>'
    path = write_epub(tmp_path / "c.epub", minimal_opf(manifest=manifest))
    meta = parse_epub(path)
    assert meta.cover is None and meta.title == "Minimal"


def test_cover_href_case_mismatch_is_tolerated(tmp_path: Path) -> None:
    manifest = (
        '<item id="c" href="Images/COVER.png" properties="cover-image" media-type="image/png"/>'
    )
    path = write_epub(
        tmp_path / "c.epub", minimal_opf(manifest=manifest), {"OEBPS/images/cover.png": png_bytes()}
    )
    cover = parse_epub(path).cover
    assert cover is not None and cover.mime == "image/png"


def test_cover_path_traversal_is_refused(tmp_path: Path) -> None:
    secret = Path("/etc/passwd").read_bytes() if Path("/etc/passwd").exists() else b"root:x:0:0"
    manifest = (
        '<item id="c" href="../../etc/passwd" properties="cover-image" media-type="image/jpeg"/>'
    )
    path = tmp_path / "c.epub"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr("META-INF/container.xml", CONTAINER.format(opf="OEBPS/content.opf"))
        zf.writestr("OEBPS/content.opf", minimal_opf(manifest=manifest))
        # A hostile member whose own name climbs out of the archive must never be used.
        zf.writestr("../../etc/passwd", b"\xff\xd8\xff" + b"hostile")
        zf.writestr("../etc/passwd", b"\xff\xd8\xff" + b"hostile")
    meta = parse_epub(path)
    assert meta.cover is None
    assert "hostile" not in repr(meta) and secret[:20].decode(errors="ignore") not in repr(meta)


def test_oversized_cover_is_skipped_without_reading(tmp_path: Path) -> None:
    manifest = '<item id="c" href="big.png" properties="cover-image" media-type="image/png"/>'
    path = tmp_path / "big.epub"
    write_epub(path, minimal_opf(manifest=manifest))
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("OEBPS/big.png", png_bytes() + b"\0" * (21 * 1024 * 1024), zipfile.ZIP_DEFLATED)
    with _bounded(seconds=2, megabytes=8):
        meta = parse_epub(path)
    assert meta.cover is None and meta.title == "Minimal"


# ---------------------------------------------------------------------------
# Table of contents edge cases
# ---------------------------------------------------------------------------


def test_chapters_are_capped(tmp_path: Path) -> None:
    items = "".join(f'<li><a href="c.xhtml#{i}">Entry {i}</a></li>' for i in range(6000))
    nav = NAV_TEMPLATE.format(body=f'<nav epub:type="toc"><ol>{items}</ol></nav>')
    meta = parse_epub(make_epub3(tmp_path / "many.epub", nav=nav))
    assert len(meta.chapters) == MAX_CHAPTERS
    assert meta.chapters[-1].title == f"Entry {MAX_CHAPTERS - 1}"


def test_sloppy_nav_falls_back_to_ncx(tmp_path: Path) -> None:
    manifest = (
        '<item id="nav" href="nav.xhtml" properties="nav" media-type="application/xhtml+xml"/>'
        '<item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>'
    )
    ncx = (
        '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/"><navMap>'
        '<navPoint><navLabel><text>From NCX</text></navLabel><content src="a.xhtml"/></navPoint>'
        "</navMap></ncx>"
    )
    path = write_epub(
        tmp_path / "n.epub",
        minimal_opf(manifest=manifest),
        {"OEBPS/nav.xhtml": "<html><nav>&nbsp;<ol><li>broken", "OEBPS/toc.ncx": ncx},
    )
    chapters = parse_epub(path).chapters
    assert [(c.title, c.href) for c in chapters] == [("From NCX", "OEBPS/a.xhtml")]


def test_nav_with_xhtml_doctype_entities(tmp_path: Path) -> None:
    nav = (
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
        '"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd">'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops">'
        '<body><nav epub:type="toc"><ol><li><a href="a.xhtml">One&nbsp;Two</a></li></ol></nav>'
        "</body></html>"
    )
    meta = parse_epub(make_epub3(tmp_path / "e.epub", nav=nav))
    assert [c.title for c in meta.chapters] == ["One Two"]


# ---------------------------------------------------------------------------
# Hostile and corrupt files
# ---------------------------------------------------------------------------


@contextmanager
def _bounded(seconds: float = 2.0, megabytes: int = 40) -> Iterator[None]:
    """Fail if the block is slow or allocates much Python memory (zip bombs, entity bombs)."""
    tracemalloc.start()
    started = time.process_time()  # CPU, not wall: other load on the machine must not fail it
    try:
        yield
    finally:
        elapsed = time.process_time() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f}s"
    assert peak < megabytes * 1024 * 1024, f"peak Python memory {peak / 2**20:.1f} MiB"


def _expect_parse_error(path: Path, *, megabytes: int = 40) -> ParseError:
    with _bounded(megabytes=megabytes), pytest.raises(ParseError) as info:
        parse_epub(path)
    message = str(info.value)
    assert message and "\n" not in message
    return info.value


def test_truncated_epub(tmp_path: Path) -> None:
    """Cut before its package document, an EPUB is unreadable; cut after, it is salvaged."""
    data = make_epub2_calibre(tmp_path / "whole.epub").read_bytes()
    opf_end = data.index(b"PK\x03\x04", data.index(b"OEBPS/content.opf") + 1)
    cut = tmp_path / "cut.epub"
    cut.write_bytes(data[: opf_end - 10])
    assert "end-of-central-directory" in str(_expect_parse_error(cut))
    cut.write_bytes(data[: len(data) - 40])
    with _bounded():
        meta = parse_epub(cut)
    assert meta.title == "The Calibre Book"
    assert [c.name for c in meta.contributors if c.role == "author"] == ["Jane Doe", "Rick Roe"]
    assert meta.warning is not None and "damaged zip" in meta.warning
    assert parse_epub(tmp_path / "whole.epub").warning is None


class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors after each member."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.buf += bytes(b)
        return len(b)


@pytest.mark.parametrize("keep", [0.6, 0.95])
def test_truncated_epub_with_data_descriptors(tmp_path: Path, keep: float) -> None:
    """Streamed zips give sizes only after each member: the salvage inflates to find them."""
    sink = _Unseekable()
    opf = minimal_opf("Streamed Book", meta='<dc:creator opf:role="aut">Sam Stream</dc:creator>')
    with zipfile.ZipFile(sink, "w") as zf:  # type: ignore[arg-type]
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        zf.writestr(
            "META-INF/container.xml",
            CONTAINER.format(opf="OEBPS/content.opf"),
            zipfile.ZIP_DEFLATED,
        )
        zf.writestr("OEBPS/content.opf", opf, zipfile.ZIP_DEFLATED)
        zf.writestr(
            "OEBPS/text/ch1.xhtml", "<html>" + "words " * 5000 + "</html>", zipfile.ZIP_DEFLATED
        )
    data = bytes(sink.buf)
    assert data[6] & 0x08  # the mimetype member itself has a data descriptor
    path = tmp_path / "streamed.epub"
    path.write_bytes(data[: int(len(data) * keep)])
    meta = parse_epub(path)
    assert (meta.title, [c.name for c in meta.contributors]) == ("Streamed Book", ["Sam Stream"])
    assert meta.warning is not None


def test_empty_and_text_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.epub"
    empty.write_bytes(b"")
    _expect_parse_error(empty)
    text = tmp_path / "notes.epub"
    text.write_text("this is not a zip file\n" * 100)
    _expect_parse_error(text)


def test_directory_named_epub(tmp_path: Path) -> None:
    folder = tmp_path / "folder.epub"
    folder.mkdir()
    _expect_parse_error(folder)


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parse_epub(tmp_path / "vanished.epub")


def test_zip_without_container(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "nc.epub", {"OEBPS/content.opf": minimal_opf()})
    assert "container.xml" in str(_expect_parse_error(path))


def test_container_naming_missing_or_escaping_opf(tmp_path: Path) -> None:
    missing = write_zip(
        tmp_path / "m.epub", {"META-INF/container.xml": CONTAINER.format(opf="nope/content.opf")}
    )
    _expect_parse_error(missing)
    escaping = tmp_path / "esc.epub"
    with zipfile.ZipFile(escaping, "w") as zf:
        zf.writestr("META-INF/container.xml", CONTAINER.format(opf="../content.opf"))
        zf.writestr("../content.opf", minimal_opf())
    _expect_parse_error(escaping)
    absolute = tmp_path / "abs.epub"
    with zipfile.ZipFile(absolute, "w") as zf:
        zf.writestr("META-INF/container.xml", CONTAINER.format(opf="/OEBPS/content.opf"))
        zf.writestr(zipfile.ZipInfo("/OEBPS/content.opf"), minimal_opf())
    with zipfile.ZipFile(absolute) as zf:
        assert zf.namelist()[-1] == "/OEBPS/content.opf"
    _expect_parse_error(absolute)


def test_malformed_opf(tmp_path: Path) -> None:
    path = write_epub(tmp_path / "bad.epub", "<package><metadata><dc:title>oops</package>")
    assert "malformed" in str(_expect_parse_error(path))


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE package [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n"
    + opf_document("<dc:title>&lol9;</dc:title>").split("\n", 1)[1]
)


def test_billion_laughs_opf(tmp_path: Path) -> None:
    path = write_epub(tmp_path / "lol.epub", BILLION_LAUGHS)
    _expect_parse_error(path)


def test_external_entity_opf(tmp_path: Path) -> None:
    opf = (
        '<?xml version="1.0"?>\n'
        '<!DOCTYPE package [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        + opf_document("<dc:title>&xxe;</dc:title><dc:description>&xxe;</dc:description>").split(
            "\n", 1
        )[1]
    )
    path = write_epub(tmp_path / "xxe.epub", opf)
    error = _expect_parse_error(path)
    assert "root:" not in str(error)
    assert "/bin/" not in str(error)


def test_deeply_nested_opf(tmp_path: Path) -> None:
    deep = "<x>" * 300 + "</x>" * 300
    path = write_epub(tmp_path / "deep.epub", opf_document(f"<dc:title>T</dc:title>{deep}"))
    _expect_parse_error(path)


def test_entity_bomb_in_nav_fails_the_book(tmp_path: Path) -> None:
    nav = BILLION_LAUGHS.replace("package", "html")
    path = make_epub3(tmp_path / "navbomb.epub", nav=nav)
    _expect_parse_error(path)
    assert parse_epub(path, with_chapters=False).title == "The Main Title"


def test_zip_bomb_container(tmp_path: Path) -> None:
    path = tmp_path / "bomb.epub"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip")
        zf.writestr(
            "META-INF/container.xml", b"<" + b" " * (64 * 1024 * 1024), zipfile.ZIP_DEFLATED
        )
    assert path.stat().st_size < 1024 * 1024
    assert "too large" in str(_expect_parse_error(path))


def _lie_about_size(path: Path, member: str, fake_size: int) -> None:
    """Patch both zip headers so `member` claims a tiny uncompressed size."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.find(b"PK\x03\x04")
    while local != -1:
        name_len = struct.unpack_from("<H", data, local + 26)[0]
        if data[local + 30 : local + 30 + name_len] == name:
            struct.pack_into("<I", data, local + 22, fake_size)
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_len = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46 : central + 46 + name_len] == name:
            struct.pack_into("<I", data, central + 24, fake_size)
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


def test_zip_bomb_with_lying_header(tmp_path: Path) -> None:
    path = tmp_path / "liar.epub"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("META-INF/container.xml", CONTAINER.format(opf="content.opf"))
        zf.writestr("content.opf", b"<" + b" " * (64 * 1024 * 1024), zipfile.ZIP_DEFLATED)
    _lie_about_size(path, "content.opf", 1000)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("content.opf").file_size == 1000
    _expect_parse_error(path)


def test_random_corruption_only_raises_parse_error(tmp_path: Path) -> None:
    """Flip bytes all over a valid book: the result is metadata or ParseError, nothing else."""
    original = make_epub3(tmp_path / "ok.epub").read_bytes()
    rng = random.Random(20240601)
    target = tmp_path / "fuzz.epub"
    outcomes = {"ok": 0, "error": 0}
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.2:
            data = data[: rng.randrange(len(data))]
        target.write_bytes(bytes(data))
        try:
            parse_epub(target)
            outcomes["ok"] += 1
        except ParseError as exc:
            assert "\n" not in str(exc)
            outcomes["error"] += 1
    assert outcomes["ok"] and outcomes["error"]


# ---------------------------------------------------------------------------
# Fields of issue 10: sort title, relator codes, subjects, Amazon URNs
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ('<dc:title opf:file-as="Hobbit, The">The Hobbit</dc:title>', "Hobbit, The"),
        (
            '<dc:title id="t">The Hobbit</dc:title>'
            '<meta refines="#t" property="file-as">Hobbit, The</meta>',
            "Hobbit, The",
        ),
        (
            '<dc:title opf:file-as="Hobbit, The">The Hobbit</dc:title>'
            '<meta name="calibre:title_sort" content="Hobbit (Tolkien)"/>',
            "Hobbit (Tolkien)",
        ),
        (
            '<dc:title>The Hobbit</dc:title><meta property="calibre:title_sort">Hobbit</meta>',
            "Hobbit",
        ),
        ("<dc:title>The Hobbit</dc:title>", None),
        ('<dc:title opf:file-as="  ">The Hobbit</dc:title>', None),
    ],
)
def test_sort_title_from_file_as_and_calibre(
    tmp_path: Path, meta: str, expected: str | None
) -> None:
    path = write_epub(tmp_path / "b.epub", opf_document(meta))
    assert parse_epub(path).sort_title == expected


@pytest.mark.parametrize(
    ("code", "role"),
    [
        ("aut", "author"),
        ("nrt", "narrator"),
        ("ill", "illustrator"),
        ("edt", "editor"),
        ("trl", "translator"),
        ("art", "artist"),
        ("aui", "introduction"),
        ("cov", "cover_artist"),
        ("mrk", "producer"),
        ("pfr", "producer"),
        ("bkp", "producer"),
        ("xyz", "contributor"),
        ("Narrator", "narrator"),
        ("made-up role", "contributor"),
    ],
)
def test_relator_codes_become_words(tmp_path: Path, code: str, role: str) -> None:
    meta = (
        "<dc:title>Roles</dc:title>"
        f'<dc:contributor id="p">Pat Person</dc:contributor>'
        f'<meta refines="#p" property="role" scheme="marc:relators">{code}</meta>'
    )
    parsed = parse_epub(write_epub(tmp_path / "r.epub", opf_document(meta)))
    assert [(c.name, c.role) for c in parsed.contributors] == [("Pat Person", role)]


@pytest.mark.parametrize(
    ("subjects", "genres"),
    [
        (["Fantasy, Adventure"], ("Fantasy", "Adventure")),
        (["Fantasy; Adventure ;  "], ("Fantasy", "Adventure")),
        (["Fantasy, Adventure", "Horror"], ("Fantasy, Adventure", "Horror")),
        (
            ["Carter, John (Fictitious character)--Fiction"],
            ("Carter, John (Fictitious character)--Fiction",),
        ),
        (["Science Fiction"], ("Science Fiction",)),
    ],
)
def test_lone_subject_is_split(
    tmp_path: Path, subjects: list[str], genres: tuple[str, ...]
) -> None:
    meta = "<dc:title>S</dc:title>" + "".join(f"<dc:subject>{s}</dc:subject>" for s in subjects)
    assert parse_epub(write_epub(tmp_path / "s.epub", opf_document(meta))).genres == genres


def test_amazon_urn_is_an_asin(tmp_path: Path) -> None:
    meta = (
        "<dc:title>A</dc:title><dc:identifier>urn:amazon:B00ABCDEFG</dc:identifier>"
        '<dc:identifier opf:scheme="URI">urn:amazon:asin:b01zzzzzzz</dc:identifier>'
    )
    parsed = parse_epub(write_epub(tmp_path / "a.epub", opf_document(meta)))
    assert parsed.identifiers == (
        Identifier("asin", "B00ABCDEFG"),
        Identifier("asin", "B01ZZZZZZZ"),
    )

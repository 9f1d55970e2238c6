"""parse_pdf against the real corpus, PDFs written with pypdf, and hostile files."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from shelfscan.formats import pdf
from shelfscan.formats.pdf import MAX_CHAPTERS, parse_pdf, split_authors
from shelfscan.formats.records import Chapter, Identifier, ParseError
from tests.formats.helpers import corpus_keys

# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------

INFO = {
    "/Title": "Info Title",
    "/Author": "Jane Doe and John Roe; Max Mustermann",
    "/Subject": "What the <b>book</b> is about",
    "/Keywords": "alpha, beta; gamma,alpha",
    "/CreationDate": "D:20200102030405+01'00'",
}

XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
      xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:pdf="http://ns.adobe.com/pdf/1.3/"
      pdf:Keywords="delta; epsilon" xmp:CreatorTool="Writer 1.0">
   <dc:title><rdf:Alt>
     <rdf:li xml:lang="de">Deutscher Titel</rdf:li>
     <rdf:li xml:lang="x-default">XMP Title</rdf:li>
   </rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>Ada Lovelace</rdf:li><rdf:li>Charles Babbage</rdf:li></rdf:Seq></dc:creator>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">XMP description</rdf:li></rdf:Alt></dc:description>
   <dc:subject><rdf:Bag><rdf:li>engines</rdf:li><rdf:li>history</rdf:li></rdf:Bag></dc:subject>
   <dc:language><rdf:Bag><rdf:li>en-GB</rdf:li></rdf:Bag></dc:language>
   <dc:identifier>urn:isbn:978-0-306-40615-7</dc:identifier>
   <xmp:CreateDate>2019-05-06T07:08:09Z</xmp:CreateDate>
   <xmp:MetadataDate>{metadata_date}</xmp:MetadataDate>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""


def make_pdf(
    path: Path,
    *,
    pages: int = 3,
    info: dict[str, str] | None = None,
    xmp: str | bytes | None = None,
    outline: bool = True,
    encrypt: dict[str, Any] | None = None,
    tweak: Callable[[PdfWriter], None] | None = None,
) -> Path:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    if info is not None:
        writer.add_metadata(info)
    if xmp is not None:
        writer.xmp_metadata = xmp.encode("utf-8") if isinstance(xmp, str) else xmp
    if outline:
        part = writer.add_outline_item(title="Part One", page_number=0)
        writer.add_outline_item(title="Chapter 1", page_number=1, parent=part)
        writer.add_outline_item(title="Part Two", page_number=2)
    if tweak is not None:
        tweak(writer)
    if encrypt is not None:
        writer.encrypt(**encrypt)
    buf = io.BytesIO()
    writer.write(buf)
    path.write_bytes(buf.getvalue())
    return path


# ---------------------------------------------------------------------------
# Real files
# ---------------------------------------------------------------------------


CORPUS_PDFS = corpus_keys(lambda k, v: k.lower().endswith(".pdf"))


def test_corpus_lists_every_pdf(corpus_dir: Path) -> None:
    on_disk = {str(p.relative_to(corpus_dir)) for p in corpus_dir.rglob("*.pdf")}
    assert on_disk == set(CORPUS_PDFS)


@pytest.mark.parametrize("key", CORPUS_PDFS)
def test_corpus_pdf_matches_truth(
    key: str, corpus_dir: Path, corpus_truth: dict[str, dict[str, Any]]
) -> None:
    truth = corpus_truth[key]
    if truth.get("corrupt"):
        with pytest.raises(ParseError):
            parse_pdf(corpus_dir / key)
        return
    meta = parse_pdf(corpus_dir / key)
    assert meta.format == truth["format"]
    assert meta.title == truth.get("title")
    assert [c.name for c in meta.contributors if c.role == "author"] == truth.get("authors", [])
    assert meta.language == truth.get("language")
    assert meta.series == ()
    isbn13 = [i.value for i in meta.identifiers if i.type == "isbn_13"]
    assert isbn13 == ([truth["isbn"]] if "isbn" in truth else [])
    assert meta.page_count == truth["pages"]
    assert len(meta.chapters) == truth["chapters"]
    assert (meta.cover is not None) == truth.get("has_cover", False)


def test_corpus_details(corpus_dir: Path) -> None:
    meta = parse_pdf(corpus_dir / "pdf/metadata.pdf")
    assert meta.description == "The Subject"
    assert meta.tags == ("Some Keywords", "other keywords", "more keywords")
    assert meta.release_date == "2022-04-15"
    assert meta.extra["pdf_version"] == "1.5"

    outline = parse_pdf(corpus_dir / "pdf/pdflatex-outline.pdf")
    assert outline.title is None and outline.contributors == ()  # present but empty in Info
    assert [c.title for c in outline.chapters] == ["Foo", "Bar", "Baz"] * 3
    assert {c.level for c in outline.chapters} == {0}
    assert [c.href for c in outline.chapters][:1] == ["#page=2"]
    assert all(c.href and c.href.startswith("#page=") for c in outline.chapters)

    # Ghostscript's XMP says "Bizet \(1838-1875\)"; the escape is not part of the name.
    bizet = parse_pdf(corpus_dir / "pdf/test.pdf")
    assert [c.name for c in bizet.contributors] == ["Georges Bizet (1838-1875)"]
    assert bizet.extra["creator_tool"] == "LilyPond 2.16.2"

    cix = parse_pdf(corpus_dir / "pdf/test_cix.pdf")
    assert cix.tags == ("d", "e", "f")
    assert cix.description == "Science Fiction"


# ---------------------------------------------------------------------------
# Synthetic PDFs
# ---------------------------------------------------------------------------


def test_info_and_outline(tmp_path: Path) -> None:
    meta = parse_pdf(make_pdf(tmp_path / "info.pdf", info=INFO))
    assert meta.format == "pdf"
    assert meta.title == "Info Title"
    assert [(c.name, c.role) for c in meta.contributors] == [
        ("Jane Doe", "author"),
        ("John Roe", "author"),
        ("Max Mustermann", "author"),
    ]
    assert meta.description == "What the book is about"
    assert meta.tags == ("alpha", "beta", "gamma")
    assert meta.release_date == "2020-01-02"
    assert meta.page_count == 3
    assert meta.chapters == (
        Chapter("Part One", 0, "#page=1"),
        Chapter("Chapter 1", 1, "#page=2"),
        Chapter("Part Two", 0, "#page=3"),
    )
    assert meta.cover is None


def test_xmp_wins_over_info(tmp_path: Path) -> None:
    xmp = XMP.format(metadata_date="2021-01-01T00:00:00Z")
    meta = parse_pdf(make_pdf(tmp_path / "xmp.pdf", info=INFO, xmp=xmp))
    assert meta.title == "XMP Title"  # x-default beats the first Alt entry
    assert [c.name for c in meta.contributors] == ["Ada Lovelace", "Charles Babbage"]
    assert meta.description == "XMP description"
    assert meta.tags == ("engines", "history", "delta", "epsilon")
    assert meta.language == "en-GB"
    assert meta.release_date == "2019-05-06"
    assert meta.identifiers == (Identifier("isbn_13", "9780306406157"),)
    assert meta.extra["creator_tool"] == "Writer 1.0"


def test_info_edited_after_xmp_wins(tmp_path: Path) -> None:
    xmp = XMP.format(metadata_date="2021-01-01T00:00:00+02:00")
    info = {**INFO, "/ModDate": "D:20230101000000Z"}
    meta = parse_pdf(make_pdf(tmp_path / "newer-info.pdf", info=info, xmp=xmp))
    assert meta.title == "Info Title"
    assert meta.tags == ("alpha", "beta", "gamma")
    assert meta.release_date == "2020-01-02"
    assert meta.language == "en-GB"  # only XMP states a language


def test_empty_xmp_values_fall_back_to_info(tmp_path: Path) -> None:
    xmp = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF
      xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description
      xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt><rdf:li
      xml:lang="x-default"> </rdf:li></rdf:Alt></dc:title><dc:creator><rdf:Seq/></dc:creator>
      </rdf:Description></rdf:RDF></x:xmpmeta>"""
    meta = parse_pdf(make_pdf(tmp_path / "empty-xmp.pdf", info=INFO, xmp=xmp))
    assert meta.title == "Info Title"
    assert len(meta.contributors) == 3


def test_sloppy_xmp_is_ignored(tmp_path: Path) -> None:
    meta = parse_pdf(make_pdf(tmp_path / "sloppy.pdf", info=INFO, xmp="<x:xmpmeta><broken"))
    assert meta.title == "Info Title"


def test_hostile_xmp_is_refused(tmp_path: Path, timed: Callable[..., Any]) -> None:
    laughs = """<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">
<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>
<x:xmpmeta xmlns:x="adobe:ns:meta/">&c;</x:xmpmeta>"""
    path = make_pdf(tmp_path / "lol.pdf", info=INFO, xmp=laughs)
    with pytest.raises(ParseError, match="unsafe XML"):
        timed(lambda: parse_pdf(path))


def test_named_destination_outline(tmp_path: Path) -> None:
    def tweak(writer: PdfWriter) -> None:
        writer.add_named_destination("chapter-two", page_number=1)
        # Outline items point at pages through a GoTo action; make one use a named
        # destination and another a plain /Dest array to a page that does not exist.
        item = _node(writer.add_outline_item(title="By name", page_number=0))
        item[NameObject("/A")] = _dict(
            {"/S": NameObject("/GoTo"), "/D": TextStringObject("chapter-two")}
        )
        lost = _node(writer.add_outline_item(title="Nowhere", page_number=0))
        lost.pop(NameObject("/A"), None)
        lost[NameObject("/Dest")] = ArrayObject([NumberObject(99), NameObject("/Fit")])

    meta = parse_pdf(make_pdf(tmp_path / "named.pdf", outline=False, tweak=tweak))
    assert meta.chapters == (Chapter("By name", 0, "#page=2"), Chapter("Nowhere", 0, None))


def _dict(values: dict[str, Any]) -> DictionaryObject:
    return DictionaryObject({NameObject(k): v for k, v in values.items()})


def _node(ref: IndirectObject) -> DictionaryObject:
    node = ref.get_object()
    assert isinstance(node, DictionaryObject)
    return node


def test_empty_user_password_is_tried(tmp_path: Path) -> None:
    for algorithm in ("RC4-128", "AES-256"):
        path = make_pdf(
            tmp_path / f"open-{algorithm}.pdf",
            info=INFO,
            encrypt={"user_password": "", "owner_password": "owner", "algorithm": algorithm},
        )
        meta = parse_pdf(path)
        assert meta.title == "Info Title"
        assert len(meta.chapters) == 3


def test_password_protected_pdf(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "locked.pdf",
        info=INFO,
        encrypt={"user_password": "secret", "algorithm": "AES-128"},
    )
    with pytest.raises(ParseError, match=r"^encrypted PDF$"):
        parse_pdf(path)


@pytest.mark.parametrize(
    ("raw", "people"),
    [
        ("Martin Thoma", ("Martin Thoma",)),
        ("Georges Bizet (1838-1875)", ("Georges Bizet (1838-1875)",)),
        ("Doe, Jane", ("Doe, Jane",)),
        ("Simon & Schuster", ("Simon & Schuster",)),
        ("Jane Doe & John Roe", ("Jane Doe", "John Roe")),
        ("Jane Doe, John Roe and Max Mustermann", ("Jane Doe", "John Roe", "Max Mustermann")),
        ("Doe, Jane; Roe, John", ("Doe, Jane", "Roe, John")),
        ("Smith and Wesson", ("Smith and Wesson",)),
        ("Ann Lee;; ann lee ; ", ("Ann Lee",)),
        ("Alexandra Anderson", ("Alexandra Anderson",)),
    ],
)
def test_split_authors(raw: str, people: tuple[str, ...]) -> None:
    assert split_authors(raw) == people


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parse_pdf(tmp_path / "gone.pdf")


def test_unreadable_path_is_a_parse_error(tmp_path: Path) -> None:
    folder = tmp_path / "folder.pdf"
    folder.mkdir()
    with pytest.raises(ParseError):
        parse_pdf(folder)


# ---------------------------------------------------------------------------
# Hostile files
# ---------------------------------------------------------------------------


def test_text_file_named_pdf(tmp_path: Path, timed: Callable[..., Any]) -> None:
    path = tmp_path / "fake.pdf"
    path.write_text("hello, I am not a PDF\n" * 100)
    with pytest.raises(ParseError, match="not a readable PDF"):
        timed(lambda: parse_pdf(path))


def test_empty_pdf(tmp_path: Path) -> None:
    path = tmp_path / "empty.pdf"
    path.write_bytes(b"")
    with pytest.raises(ParseError):
        parse_pdf(path)


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9])
def test_truncated_pdf(tmp_path: Path, keep: float, timed: Callable[..., Any]) -> None:
    """pypdf may rebuild a cut file's xref; either way the result is bounded and typed."""
    full = make_pdf(tmp_path / "full.pdf", info=INFO).read_bytes()
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(full[: int(len(full) * keep)])
    try:
        meta = timed(lambda: parse_pdf(cut))
    except ParseError:
        return
    assert meta.format == "pdf"
    assert meta.page_count is None or meta.page_count <= 3
    assert len(meta.chapters) <= 3


def test_outline_cycle_is_walked_once(tmp_path: Path, timed: Callable[..., Any]) -> None:
    def tweak(writer: PdfWriter) -> None:
        first = writer.add_outline_item(title="A", page_number=0)
        second = writer.add_outline_item(title="B", page_number=1)
        _node(second)[NameObject("/Next")] = first  # B -> A -> B -> ...
        _node(second)[NameObject("/First")] = first  # and A is also B's child

    meta = timed(lambda: parse_pdf(make_pdf(tmp_path / "cycle.pdf", outline=False, tweak=tweak)))
    assert [c.title for c in meta.chapters] == ["A", "B"]


def test_outline_depth_is_capped(tmp_path: Path, timed: Callable[..., Any]) -> None:
    def tweak(writer: PdfWriter) -> None:
        parent = None
        for level in range(100):
            parent = writer.add_outline_item(title=f"L{level}", page_number=0, parent=parent)

    meta = timed(lambda: parse_pdf(make_pdf(tmp_path / "deep.pdf", outline=False, tweak=tweak)))
    assert len(meta.chapters) == pdf.MAX_OUTLINE_DEPTH
    assert max(c.level for c in meta.chapters) == pdf.MAX_OUTLINE_DEPTH - 1


def test_outline_size_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert MAX_CHAPTERS == 5000
    monkeypatch.setattr(pdf, "MAX_CHAPTERS", 7)

    def tweak(writer: PdfWriter) -> None:
        for i in range(20):
            writer.add_outline_item(title=f"C{i}", page_number=0)

    meta = parse_pdf(make_pdf(tmp_path / "many.pdf", outline=False, tweak=tweak))
    assert [c.title for c in meta.chapters] == [f"C{i}" for i in range(7)]


# ---------------------------------------------------------------------------
# Page 1 as the cover
# ---------------------------------------------------------------------------


def image_pdf(path: Path, size: tuple[int, int], colour: tuple[int, int, int]) -> Path:
    """A one-page PDF whose page is exactly a solid-colour image (72 dpi: 1 px = 1 pt)."""
    from PIL import Image

    Image.new("RGB", size, colour).save(path, "PDF", resolution=72.0)
    return path


def dominant(data: bytes) -> tuple[int, int, int]:
    from PIL import Image

    image = Image.open(io.BytesIO(data)).convert("RGB")
    colours = image.getcolors(image.width * image.height)
    assert colours is not None
    return max(colours)[1]


@pytest.mark.parametrize(
    ("size", "expected"),
    [((300, 450), (400, 600)), ((1000, 500), (600, 300)), ((60, 60), (600, 600))],
)
def test_page_one_renders_at_thumbnail_size(
    tmp_path: Path, size: tuple[int, int], expected: tuple[int, int]
) -> None:
    from PIL import Image

    path = image_pdf(tmp_path / "p.pdf", size, (200, 30, 40))
    cover = pdf.render_first_page(path)
    assert cover is not None and cover.mime == "image/jpeg"
    assert Image.open(io.BytesIO(cover.data)).size == expected
    r, g, b = dominant(cover.data)
    assert abs(r - 200) <= 6 and abs(g - 30) <= 6 and abs(b - 40) <= 6


def test_parse_pdf_itself_renders_nothing(tmp_path: Path) -> None:
    assert parse_pdf(image_pdf(tmp_path / "p.pdf", (50, 80), (0, 0, 255))).cover is None


@pytest.mark.parametrize(("width", "height"), [(20_000, 20_000), (5000, 10), (1, 1000)])
def test_absurd_page_boxes_are_not_rendered(tmp_path: Path, width: int, height: int) -> None:
    writer = PdfWriter()
    writer.add_blank_page(width=width, height=height)
    path = tmp_path / "absurd.pdf"
    with open(path, "wb") as fh:
        writer.write(fh)
    with pytest.raises(pdf.CoverRenderError, match="not rendered"):
        pdf.render_first_page(path)


def test_unrenderable_pdf_is_a_cover_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.4\nthis is not a PDF body\n")
    with pytest.raises(pdf.CoverRenderError, match="not rendered"):
        pdf.render_first_page(path)


def test_corpus_pdfs_render_a_cover(corpus_dir: Path) -> None:
    from PIL import Image

    for name in ("test.pdf", "metadata.pdf", "pdflatex-outline.pdf", "test_cix.pdf"):
        cover = pdf.render_first_page(corpus_dir / "pdf" / name)
        assert cover is not None, name
        width, height = Image.open(io.BytesIO(cover.data)).size
        assert max(width, height) == pdf.COVER_LONGEST_SIDE_PX, name

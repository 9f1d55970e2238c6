"""Comic archives (CBZ/CBT/CB7/CBR) against the real corpus, hand-built archives and hostile files."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zipfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shelfscan.formats import comics
from shelfscan.formats.comics import (
    natural_key,
    parse_cb7,
    parse_cbr,
    parse_cbt,
    parse_cbz,
)
from shelfscan.formats.records import (
    Identifier,
    Metadata,
    ParseError,
    ReadingDirection,
    SeriesEntry,
    Subject,
    SubjectKind,
)
from shelfscan.testing.comics import write_cbr
from tests.formats.helpers import corpus_keys, png_bytes

PARSERS: dict[str, Callable[[Path], Metadata]] = {
    "cbz": parse_cbz,
    "cbt": parse_cbt,
    "cb7": parse_cb7,
    "cbr": parse_cbr,
}

# ---------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------


FULL_COMICINFO = """<?xml version="1.0" encoding="utf-8"?>
<ComicInfo xmlns:xsd="http://www.w3.org/2001/XMLSchema"
           xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <Title>The  Test Issue</Title>
  <Series>Test Comics</Series>
  <Number>1.5</Number>
  <Count>12</Count>
  <Volume>2021</Volume>
  <Summary>&lt;p&gt;A &lt;b&gt;bold&lt;/b&gt; start.&lt;/p&gt;</Summary>
  <Year>2021</Year>
  <Month>3</Month>
  <Day>9</Day>
  <Writer>Wanda Writer, Walt Words</Writer>
  <Penciller>Pete Pencil</Penciller>
  <Inker>Ink Ingram</Inker>
  <Colorist>Carla Color</Colorist>
  <Letterer>Lou Letters</Letterer>
  <CoverArtist>Cora Cover</CoverArtist>
  <Editor>Ed Edits</Editor>
  <Translator>Tra Duttore</Translator>
  <Publisher>Test Press</Publisher>
  <Imprint>Test Imprint</Imprint>
  <Genre>Science Fiction, Adventure,  ,Science Fiction</Genre>
  <Tags>space, robots</Tags>
  <Web>https://example.org/comics/1</Web>
  <LanguageISO>en</LanguageISO>
  <GTIN>978-0-306-40615-7</GTIN>
  <Pages>
    <Page Image="0" Type="Story"/>
    <Page Image="1" Type="Story"/>
    <Page Image="2" Type="FrontCover"/>
  </Pages>
</ComicInfo>
"""

# Natural order is p1, p2, p10: the FrontCover (Image="2") is p10.png, which plain string
# order would put second.
PAGES = {"pages/p10.png": png_bytes(10), "pages/p2.png": png_bytes(2), "pages/p1.png": png_bytes(1)}


def write_cbz(path: Path, files: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def write_cbt(path: Path, files: dict[str, bytes | str]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tf.addfile(info, io.BytesIO(raw))
    return path


def write_cb7(path: Path, files: dict[str, bytes | str], password: str | None = None) -> Path:
    import py7zr

    with py7zr.SevenZipFile(path, "w", password=password) as archive:
        for name, data in files.items():
            archive.writestr(data.encode() if isinstance(data, str) else data, name)
    return path


def assert_full_metadata(meta: Metadata, fmt: str) -> None:
    assert meta.format == fmt
    assert meta.title == "The Test Issue"
    assert [(c.name, c.role) for c in meta.contributors] == [
        ("Wanda Writer", "writer"),
        ("Walt Words", "writer"),
        ("Pete Pencil", "penciller"),
        ("Ink Ingram", "inker"),
        ("Carla Color", "colorist"),
        ("Lou Letters", "letterer"),
        ("Cora Cover", "cover_artist"),
        ("Ed Edits", "editor"),
        ("Tra Duttore", "translator"),
    ]
    assert [(s.name, s.number) for s in meta.series] == [("Test Comics", Decimal("1.5"))]
    assert meta.description == "A bold start."
    assert meta.publisher == "Test Press"
    assert meta.release_date == "2021-03-09"
    assert meta.language == "en"
    assert meta.genres == ("Science Fiction", "Adventure")
    assert meta.tags == ("space", "robots")
    assert meta.identifiers == (Identifier("isbn_13", "9780306406157"),)
    assert meta.extra == {"imprint": "Test Imprint"}
    assert (meta.volume, meta.issue_count, meta.web_link) == (
        2021,
        12,
        "https://example.org/comics/1",
    )
    assert meta.page_count == 3
    assert meta.cover is not None
    assert meta.cover.data == PAGES["pages/p10.png"]
    assert meta.cover.mime == "image/png"


# ---------------------------------------------------------------------------
# Real files
# ---------------------------------------------------------------------------

_COMIC_EXTENSIONS = (".cbz", ".cbt", ".cb7", ".cbr")


CORPUS_COMICS = corpus_keys(lambda k, v: k.lower().endswith(_COMIC_EXTENSIONS))


def test_corpus_lists_every_comic(corpus_dir: Path) -> None:
    on_disk = {
        str(p.relative_to(corpus_dir))
        for p in corpus_dir.rglob("*")
        if p.suffix.lower() in _COMIC_EXTENSIONS
    }
    assert on_disk == set(CORPUS_COMICS)
    assert {k.rsplit(".", 1)[1] for k in CORPUS_COMICS} == set(PARSERS)


@pytest.mark.parametrize("key", CORPUS_COMICS)
def test_corpus_comic_matches_truth(
    key: str, corpus_dir: Path, corpus_truth: dict[str, dict[str, Any]]
) -> None:
    truth = corpus_truth[key]
    parse = PARSERS[key.rsplit(".", 1)[1].lower()]
    if truth.get("corrupt"):
        with pytest.raises(ParseError):
            parse(corpus_dir / key)
        return
    meta = parse(corpus_dir / key)

    assert meta.format == truth["format"]
    if key in CORPUS_OTHER_DIALECTS:
        # Truth reflects ComicInfo.xml only; these carry CoMet or ComicBookInfo (tested below).
        assert meta.page_count == truth["pages"] and meta.cover is not None
        return
    assert meta.title == truth.get("title")
    # A comic's "authors" are its ComicInfo Writers.
    assert [c.name for c in meta.contributors if c.role == "writer"] == truth.get("authors", [])
    if "series" in truth:
        assert [s.name for s in meta.series] == [truth["series"]]
        assert meta.series[0].number == Decimal(str(truth["series_index"]))
    else:
        assert meta.series == ()
    assert meta.language == truth.get("language")
    isbn13 = [i.value for i in meta.identifiers if i.type == "isbn_13"]
    assert isbn13 == ([truth["isbn"]] if "isbn" in truth else [])
    assert meta.page_count == truth["pages"]
    assert len(meta.chapters) == truth.get("chapters", 0)
    assert (meta.cover is not None) == truth["has_cover"]
    if meta.cover is not None:
        assert meta.cover.mime == "image/jpeg" and meta.cover.data.startswith(b"\xff\xd8")


CORPUS_OTHER_DIALECTS = {
    "comics/Captain Science #001-comet-cbz/Captain Science #001-comet.cbz",
    "comics/Captain Science #001-cbi-cbr/Captain Science #001-cbi.cbr",
}


def test_corpus_comet(corpus_dir: Path) -> None:
    """Only CoMet.xml, in the page folder (values from the corpus MANIFEST)."""
    meta = parse_cbz(
        corpus_dir / "comics/Captain Science #001-comet-cbz/Captain Science #001-comet.cbz"
    )
    assert meta.title == "The Beginning"
    assert [(c.name, c.role) for c in meta.contributors] == [
        ("Joe Orlando", "writer"),
        ("Wally Wood", "penciller"),
    ]
    assert meta.series == (SeriesEntry("Captain Science", Decimal(1)),)
    assert (meta.publisher, meta.release_date, meta.language) == (
        "Bell Features",
        "1950-12-01",
        "en",
    )
    assert meta.description == "A long example description"
    assert meta.genres == ("Science Fiction",)
    assert (meta.age_rating, meta.reading_direction, meta.volume) == (
        "Teen",
        ReadingDirection.LTR,
        1,
    )
    assert meta.identifiers == (Identifier("comicvine", "145269"),)
    assert meta.subjects == (
        Subject(SubjectKind.CHARACTER, "Captain Science"),
        Subject(SubjectKind.CHARACTER, "Gordon Dane"),
    )
    assert meta.cover is not None and len(meta.cover.data) == 4542  # coverImage names page 1


def test_corpus_comicbookinfo_in_a_rar_comment(corpus_dir: Path) -> None:
    """RAR 5 with only a ComicBookInfo comment: read from the archive headers."""
    meta = parse_cbr(
        corpus_dir / "comics/Captain Science #001-cbi-cbr/Captain Science #001-cbi.cbr"
    )
    assert meta.title == "The Beginning"
    assert [(c.name, c.role) for c in meta.contributors] == [
        ("Joe Orlando", "writer"),
        ("Wally Wood", "penciller"),
    ]
    assert meta.series == (SeriesEntry("Captain Science", Decimal(1)),)
    assert (meta.publisher, meta.release_date, meta.language) == (
        "Youthful Adventure Stories",
        "1950-11",
        "en",
    )
    assert (meta.volume, meta.volume_count, meta.issue_count) == (1950, 1, 7)
    assert meta.genres == ("Science Fiction",)


def test_corpus_cbz_details(corpus_dir: Path) -> None:
    path = corpus_dir / "comics/Captain Science #001-cbz/Captain Science #001.cbz"
    meta = parse_cbz(path)
    # The root "comicinfo.xml" (PageCount 0) wins over the sub-folder copy; 0 means unknown.
    assert meta.page_count == 5
    assert [(c.name, c.role) for c in meta.contributors] == [
        ("Joe Orlando", "writer"),
        ("Wally Wood", "penciller"),
        ("Wally Wood", "inker"),
    ]
    assert meta.publisher == "Youthful Adventure Stories"
    assert meta.release_date == "1950-11-01"
    assert meta.genres == ("Science Fiction",)
    # GTIN holds a Comic Vine URN, not a barcode: kept as a URI, never as an ISBN. The
    # MetronInfo beside it adds its Comic Vine id; its ISBN fails the checksum and its UPC
    # "12345" is no barcode, so both are dropped.
    assert meta.identifiers == (
        Identifier("uri", "urn:comicvine:issue:145269"),
        Identifier("comicvine", "145269"),
    )
    assert (meta.volume, meta.issue_count) == (1950, 7)
    assert meta.age_rating == "Teen"
    assert meta.web_link == "https://comicvine.gamespot.com/c/4000-145269/"
    assert meta.subjects == (
        Subject(SubjectKind.STORY_ARC, "Captain Arc", Decimal(4)),
        Subject(SubjectKind.STORY_ARC, "Other Arc", Decimal(2)),
        Subject(SubjectKind.CHARACTER, "Captain Science"),
        Subject(SubjectKind.CHARACTER, "Gordon Dane"),
    )
    with zipfile.ZipFile(path) as zf:
        first = zf.read("Captain Science 001/CaptainScience#1_01.jpg")
    assert meta.cover is not None and meta.cover.data == first


def test_corpus_formats_agree(corpus_dir: Path) -> None:
    """The same issue in four containers gives the same cover and pages."""
    keys = [k for k in CORPUS_COMICS if "Captain Science #001" in k]
    metas = [PARSERS[k.rsplit(".", 1)[1]](corpus_dir / k) for k in keys]
    covers = {m.cover.data for m in metas if m.cover is not None}
    assert len(covers) == 1 and len(next(iter(covers))) == 4542
    assert {m.page_count for m in metas} == {5}


def test_corpus_macos_resource_forks_are_not_pages(corpus_dir: Path) -> None:
    meta = parse_cbz(corpus_dir / "comics/macos_resource_fork-cbz/macos_resource_fork.cbz")
    assert meta.page_count == 2
    assert meta.title is None and meta.contributors == ()
    assert meta.cover is not None and len(meta.cover.data) == 4542


# ---------------------------------------------------------------------------
# Synthetic archives
# ---------------------------------------------------------------------------


def test_cbz_full_comicinfo(tmp_path: Path) -> None:
    path = write_cbz(tmp_path / "full.cbz", {**PAGES, "ComicInfo.xml": FULL_COMICINFO})
    assert_full_metadata(parse_cbz(path), "cbz")


def test_cbt_full_comicinfo(tmp_path: Path) -> None:
    path = write_cbt(tmp_path / "full.cbt", {**PAGES, "ComicInfo.xml": FULL_COMICINFO})
    assert_full_metadata(parse_cbt(path), "cbt")


def test_cb7_full_comicinfo(tmp_path: Path) -> None:
    path = write_cb7(tmp_path / "full.cb7", {**PAGES, "ComicInfo.xml": FULL_COMICINFO})
    assert_full_metadata(parse_cb7(path), "cb7")


def test_gzipped_cbt(tmp_path: Path) -> None:
    plain = write_cbt(tmp_path / "plain.tar", {**PAGES, "ComicInfo.xml": FULL_COMICINFO})
    packed = tmp_path / "packed.cbt"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert_full_metadata(parse_cbt(packed), "cbt")


def test_without_comicinfo(tmp_path: Path) -> None:
    path = write_cbz(tmp_path / "bare.cbz", {**PAGES, "notes.txt": "hello", "dir/": b""})
    meta = parse_cbz(path)
    assert meta == Metadata(format="cbz", page_count=3, cover=meta.cover)
    assert meta.cover is not None and meta.cover.data == PAGES["pages/p1.png"]


def test_mislabelled_container_is_read_by_its_magic(tmp_path: Path) -> None:
    """A zip named .cbr (common in the wild) is read as the zip it is."""
    path = write_cbz(tmp_path / "really-a-zip.cbr", {**PAGES, "ComicInfo.xml": FULL_COMICINFO})
    assert_full_metadata(parse_cbr(path), "cbz")
    tar = write_cbt(tmp_path / "really-a-tar.cbz", dict(PAGES))
    assert parse_cbz(tar).format == "cbt"


def test_comicinfo_variants(tmp_path: Path) -> None:
    info = """<ComicInfo><Series>S</Series><Number>1a</Number><PageCount>40</PageCount>
      <Year>-1</Year><Month>13</Month><GTIN>012345678905</GTIN><Writer> , </Writer>
      <Pages><Page Image="9" Type="FrontCover"/></Pages></ComicInfo>"""
    path = write_cbz(tmp_path / "v.cbz", {"sub/comicinfo.XML": info, "a.jpg.png": png_bytes(4)})
    meta = parse_cbz(path)
    assert meta.series == (SeriesEntry("S", None),)
    assert meta.extra == {"number": "1a"}
    assert meta.page_count == 40  # ComicInfo's PageCount wins when it states one
    assert meta.release_date is None
    assert meta.identifiers == (Identifier("gtin", "012345678905"),)
    assert meta.contributors == ()
    # FrontCover index 9 is out of range: the first page is the cover.
    assert meta.cover is not None and meta.cover.data == png_bytes(4)


def test_comicinfo_nearest_the_root_wins(tmp_path: Path) -> None:
    path = write_cbz(
        tmp_path / "two.cbz",
        {
            "a/b/ComicInfo.xml": "<ComicInfo><Title>Deep</Title></ComicInfo>",
            "a/ComicInfo.xml": "<ComicInfo><Title>Shallow</Title></ComicInfo>",
            "a/p.png": png_bytes(1),
        },
    )
    assert parse_cbz(path).title == "Shallow"


def test_sloppy_comicinfo_costs_only_the_metadata(tmp_path: Path) -> None:
    path = write_cbz(tmp_path / "sloppy.cbz", {"ComicInfo.xml": "<ComicInfo><Title>x", **PAGES})
    meta = parse_cbz(path)
    assert meta.title is None
    assert meta.page_count == 3 and meta.cover is not None
    assert meta.extra["comicinfo_error"].startswith("malformed XML")


def test_cover_mime_falls_back_to_extension(tmp_path: Path) -> None:
    path = write_cbz(tmp_path / "odd.cbz", {"001.webp": b"not really webp"})
    meta = parse_cbz(path)
    assert meta.cover is not None and meta.cover.mime == "image/webp"


def test_natural_key() -> None:
    names = ["p10.png", "P2.png", "p1.png", "p02b.png", "x" + "9" * 5000, "x" + "1" * 5000]
    assert sorted(names, key=natural_key) == [
        "p1.png",
        "P2.png",
        "p02b.png",
        "p10.png",
        "x" + "1" * 5000,
        "x" + "9" * 5000,
    ]


def test_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    for parse in PARSERS.values():
        with pytest.raises(FileNotFoundError):
            parse(tmp_path / "gone.cbz")


def test_unreadable_path_is_a_parse_error(tmp_path: Path) -> None:
    folder = tmp_path / "folder.cbz"
    folder.mkdir()
    for parse in PARSERS.values():
        with pytest.raises(ParseError):
            parse(folder)


# ---------------------------------------------------------------------------
# Hostile files
# ---------------------------------------------------------------------------


def test_text_file_named_cbz(tmp_path: Path, timed: Callable[..., Any]) -> None:
    path = tmp_path / "fake.cbz"
    path.write_text("this is not a zip at all\n" * 50)
    for parse in PARSERS.values():
        with pytest.raises(ParseError):
            timed(lambda parse=parse: parse(path))


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.cbz"
    path.write_bytes(b"")
    with pytest.raises(ParseError, match="empty"):
        parse_cbz(path)


def test_truncated_cbz(tmp_path: Path, timed: Callable[..., Any]) -> None:
    full = write_cbz(tmp_path / "full.cbz", {**PAGES, "ComicInfo.xml": FULL_COMICINFO})
    cut = tmp_path / "cut.cbz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(ParseError):
        timed(lambda: parse_cbz(cut))


def test_comicinfo_zip_bomb_is_refused(tmp_path: Path, timed: Callable[..., Any]) -> None:
    bomb = b"<ComicInfo><Title>x</Title><!--" + b" " * (8 * 1024 * 1024) + b"--></ComicInfo>"
    path = write_cbz(tmp_path / "bomb.cbz", {"ComicInfo.xml": bomb, **PAGES})
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(ParseError, match=r"ComicInfo\.xml is too large"):
        timed(lambda: parse_cbz(path))


def test_comicinfo_with_lying_sizes_is_refused(tmp_path: Path, timed: Callable[..., Any]) -> None:
    """A bomb whose headers declare 100 bytes never yields more than that (and fails its CRC)."""
    bomb = b"<ComicInfo><Title>x</Title><!--" + b" " * (8 * 1024 * 1024) + b"--></ComicInfo>"
    path = write_cbz(tmp_path / "liar.cbz", {"ComicInfo.xml": bomb, **PAGES})
    raw = bytearray(path.read_bytes())
    real = struct.pack("<I", len(bomb))
    at = raw.find(real)
    while at >= 0:  # patch the local header and the central directory
        raw[at : at + 4] = struct.pack("<I", 100)
        at = raw.find(real, at + 4)
    path.write_bytes(bytes(raw))
    with pytest.raises(ParseError, match=r"CRC|inflates"):
        timed(lambda: parse_cbz(path))


def test_billion_laughs_comicinfo(tmp_path: Path, timed: Callable[..., Any]) -> None:
    laughs = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<ComicInfo><Title>&lol3;</Title></ComicInfo>"""
    path = write_cbz(tmp_path / "lol.cbz", {"ComicInfo.xml": laughs, **PAGES})
    with pytest.raises(ParseError, match="unsafe XML"):
        timed(lambda: parse_cbz(path))


def test_traversal_names_are_never_pages(tmp_path: Path, timed: Callable[..., Any]) -> None:
    evil = png_bytes(66)
    files: dict[str, bytes | str] = {
        "../../evil.png": evil,
        "/abs/evil2.png": evil,
        "a\\..\\..\\evil3.png": evil,
        "C:/evil4.png": evil,
        "ok/p1.png": png_bytes(1),
    }
    for name, write in (("t.cbz", write_cbz), ("t.cbt", write_cbt)):
        meta = timed(
            lambda write=write, name=name: PARSERS[name[-3:]](write(tmp_path / name, files))
        )
        assert meta.page_count == 1
        assert meta.cover is not None and meta.cover.data == png_bytes(1)
    only_evil = write_cbz(tmp_path / "only.cbz", {"../../evil.png": evil})
    with pytest.raises(ParseError, match="no page images"):
        parse_cbz(only_evil)
    assert not list(tmp_path.parent.parent.glob("evil*.png"))


def test_oversized_cover_costs_only_the_cover(tmp_path: Path, timed: Callable[..., Any]) -> None:
    huge = b"\x89PNG\r\n\x1a\n" + bytes(comics.MAX_IMAGE_BYTES + 1)
    path = write_cbz(tmp_path / "huge.cbz", {"p1.png": huge, "p2.png": png_bytes(2)})
    meta = timed(lambda: parse_cbz(path))
    assert meta.page_count == 2 and meta.cover is None


def test_compressed_tar_inflation_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = write_cbt(tmp_path / "plain.tar", {"p1.png": png_bytes(1), "big.bin": bytes(5000)})
    packed = tmp_path / "packed.cbt"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    monkeypatch.setattr(comics, "MAX_SKIP_BYTES", 4096)
    with pytest.raises(ParseError, match="inflates beyond 4096"):
        parse_cbt(packed)
    assert parse_cbt(plain).page_count == 1  # an uncompressed tar costs only its own size


def test_too_many_members(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comics, "MAX_MEMBERS", 3)
    path = write_cbz(tmp_path / "many.cbz", {f"p{i}.png": png_bytes(1) for i in range(5)})
    with pytest.raises(ParseError, match="more than 3 entries"):
        parse_cbz(path)


def test_encrypted_cb7(tmp_path: Path) -> None:
    path = write_cb7(tmp_path / "locked.cb7", dict(PAGES), password="secret")
    with pytest.raises(ParseError, match="encrypted"):
        parse_cb7(path)


def test_garbage_after_rar_magic(tmp_path: Path, timed: Callable[..., Any]) -> None:
    path = tmp_path / "junk.cbr"
    path.write_bytes(b"Rar!\x1a\x07\x01\x00" + bytes(range(256)) * 8)
    with pytest.raises(ParseError):
        timed(lambda: parse_cbr(path))


# ---------------------------------------------------------------------------
# Beyond ComicInfo (issue 10): CoMet, MetronInfo, ComicBookInfo, extended fields
# ---------------------------------------------------------------------------

COMET = """<?xml version="1.0"?>
<comet xmlns="http://www.denvog.com/comet/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <title>Comet Title</title><series>Comet Series</series><issue>7</issue><volume>2</volume>
  <publisher>Comet Press</publisher><date>2019-04-02</date><language>French</language>
  <description>A comet story.</description><genre>Humour</genre><genre>Humour</genre>
  <character>Asterix</character><character>Obelix</character><rating>All Ages</rating>
  <writer>Rene Scribe</writer><penciller>Albert Pen</penciller><coverDesigner>Cy Cover</coverDesigner>
  <creator>Some One</creator><identifier>CVDB42</identifier>
  <readingDirection>rtl</readingDirection><coverImage>p2.png</coverImage>
</comet>"""

METRON = """<?xml version="1.0"?>
<MetronInfo>
  <IDS><ID source="Metron" primary="true">290431</ID><ID source="Comic Vine">1234</ID></IDS>
  <Publisher id="1"><Name>Metron Comics</Name></Publisher>
  <Series lang="en"><Name>Metron Saga</Name><Volume>3</Volume><IssueCount>12</IssueCount>
    <VolumeCount>4</VolumeCount></Series>
  <Number>5</Number>
  <Stories><Story>Part One</Story><Story>Part Two</Story></Stories>
  <Summary>Metron summary.</Summary><CoverDate>2022-06-01</CoverDate>
  <Genres><Genre>Superhero</Genre></Genres><Tags><Tag>crossover</Tag></Tags>
  <Arcs><Arc><Name>Big Event</Name><Number>2</Number></Arc></Arcs>
  <Characters><Character>Hero, The</Character></Characters>
  <Teams><Team>Avengers</Team></Teams>
  <Locations><Location>Metropolis</Location></Locations>
  <GTIN><ISBN>978-0-306-40615-7</ISBN><UPC>761941 31003 4 00111</UPC></GTIN>
  <AgeRating>Teen Plus</AgeRating>
  <URLs><URL>https://example.org/other</URL><URL primary="true">https://example.org/m/5</URL></URLs>
  <Credits>
    <Credit><Creator>Wendy Writer</Creator><Roles><Role>Writer</Role></Roles></Credit>
    <Credit><Creator>Art Ist</Creator><Roles><Role>Penciller</Role><Role>Cover</Role></Roles></Credit>
    <Credit><Creator>Ed Boss</Creator><Roles><Role>Editor In Chief</Role></Roles></Credit>
  </Credits>
</MetronInfo>"""

CBI_COMMENT = json.dumps(
    {
        "appID": "ComicTagger/1.0",
        "lastModified": "2020-01-01 00:00:00",
        "ComicBookInfo/1.0": {
            "series": "CBI Series",
            "title": "CBI Title",
            "issue": 9,
            "publisher": "CBI Press",
            "publicationYear": 2001,
            "publicationMonth": 8,
            "numberOfIssues": 20,
            "volume": 2001,
            "numberOfVolumes": 2,
            "language": "German",
            "genre": "Crime, Noir",
            "tags": ["detective", "city"],
            "comments": "CBI comments.",
            "credits": [
                {"person": "Carl Writer", "role": "Writer", "primary": True},
                {"person": "Ina Inks", "role": "Inker"},
                {"person": "Rob Odd", "role": "Flatter"},
            ],
        },
    }
)


def _check_comet(meta: Metadata) -> None:
    assert meta.title == "Comet Title"
    assert meta.series == (SeriesEntry("Comet Series", Decimal(7)),)
    assert [(c.name, c.role) for c in meta.contributors] == [
        ("Rene Scribe", "writer"),
        ("Albert Pen", "penciller"),
        ("Cy Cover", "cover_artist"),
        ("Some One", "contributor"),
    ]
    assert (meta.publisher, meta.release_date, meta.language) == ("Comet Press", "2019-04-02", "fr")
    assert (meta.description, meta.genres, meta.age_rating) == (
        "A comet story.",
        ("Humour",),
        "All Ages",
    )
    assert (meta.volume, meta.reading_direction) == (2, ReadingDirection.RTL)
    assert meta.identifiers == (Identifier("comicvine", "42"),)
    assert [s.name for s in meta.subjects] == ["Asterix", "Obelix"]
    assert meta.cover is not None and meta.cover.data == PAGES["pages/p2.png"]


@pytest.mark.parametrize("fmt", ["cbz", "cbt", "cb7", "cbr"])
def test_comet_only(tmp_path: Path, fmt: str) -> None:
    files: dict[str, bytes | str] = {**PAGES, "pages/CoMet.xml": COMET}
    path = WRITERS[fmt](tmp_path / f"comet.{fmt}", files)
    _check_comet(PARSERS[fmt](path))


def test_metroninfo_only(tmp_path: Path) -> None:
    meta = parse_cbz(write_cbz(tmp_path / "m.cbz", {**PAGES, "MetronInfo.xml": METRON}))
    assert meta.title == "Part One; Part Two"
    assert meta.series == (SeriesEntry("Metron Saga", Decimal(5)),)
    assert [(c.name, c.role) for c in meta.contributors] == [
        ("Wendy Writer", "writer"),
        ("Art Ist", "penciller"),
        ("Art Ist", "cover_artist"),
        ("Ed Boss", "contributor"),  # an unknown role word is a plain contributor
    ]
    assert (meta.publisher, meta.release_date, meta.language) == (
        "Metron Comics",
        "2022-06-01",
        "en",
    )
    assert (meta.description, meta.genres, meta.tags) == (
        "Metron summary.",
        ("Superhero",),
        ("crossover",),
    )
    assert (meta.volume, meta.issue_count, meta.volume_count) == (3, 12, 4)
    assert (meta.age_rating, meta.web_link) == ("Teen Plus", "https://example.org/m/5")
    assert meta.identifiers == (
        Identifier("isbn_13", "9780306406157"),
        Identifier("metron", "290431"),
        Identifier("comicvine", "1234"),
    )
    assert meta.subjects == (
        Subject(SubjectKind.STORY_ARC, "Big Event", Decimal(2)),
        Subject(SubjectKind.CHARACTER, "Hero, The"),  # one element, one name: commas kept
        Subject(SubjectKind.TEAM, "Avengers"),
        Subject(SubjectKind.LOCATION, "Metropolis"),
    )


def _check_cbi(meta: Metadata) -> None:
    assert meta.title == "CBI Title"
    assert meta.series == (SeriesEntry("CBI Series", Decimal(9)),)
    assert [(c.name, c.role) for c in meta.contributors] == [
        ("Carl Writer", "writer"),
        ("Ina Inks", "inker"),
        ("Rob Odd", "contributor"),
    ]
    assert (meta.publisher, meta.release_date, meta.language) == ("CBI Press", "2001-08", "de")
    assert (meta.volume, meta.issue_count, meta.volume_count) == (2001, 20, 2)
    assert (meta.genres, meta.tags) == (("Crime", "Noir"), ("detective", "city"))
    assert meta.description == "CBI comments."


def test_comicbookinfo_in_a_zip_comment(tmp_path: Path) -> None:
    path = write_cbz(tmp_path / "cbi.cbz", dict(PAGES))
    with zipfile.ZipFile(path, "a") as zf:
        zf.comment = CBI_COMMENT.encode()
    _check_cbi(parse_cbz(path))


@pytest.mark.parametrize("version", [5, 4])
def test_comicbookinfo_in_a_rar_comment(tmp_path: Path, version: int) -> None:
    path = write_cbr(tmp_path / "cbi.cbr", dict(PAGES), CBI_COMMENT, version=version)
    _check_cbi(parse_cbr(path))


@pytest.mark.parametrize(
    "comment",
    [b"just a comment", b"{not json ComicBookInfo/1.0", b'{"ComicBookInfo/1.0": 5}', b"\xff\xfe"],
)
def test_other_archive_comments_cost_nothing(tmp_path: Path, comment: bytes) -> None:
    meta = parse_cbr(write_cbr(tmp_path / "c.cbr", dict(PAGES), comment))
    assert meta.title is None and meta.page_count == 3


def test_comicinfo_leads_and_other_dialects_fill_gaps(tmp_path: Path) -> None:
    info = "<ComicInfo><Title>CI Title</Title><Writer>Ci Writer</Writer></ComicInfo>"
    path = write_cbz(
        tmp_path / "all.cbz",
        {**PAGES, "ComicInfo.xml": info, "MetronInfo.xml": METRON, "CoMet.xml": COMET},
    )
    meta = parse_cbz(path)
    assert meta.title == "CI Title"
    assert [c.name for c in meta.contributors] == ["Ci Writer"]  # credits never mix dialects
    assert meta.publisher == "Metron Comics"  # ComicInfo is silent: MetronInfo next
    assert meta.reading_direction == ReadingDirection.RTL  # only CoMet says it
    assert [s.name for s in meta.subjects if s.kind is SubjectKind.CHARACTER] == ["Hero, The"]


EXTENDED_COMICINFO = """<ComicInfo>
  <Title>Manga</Title><Manga>YesAndRightToLeft</Manga><AgeRating>Mature 17+</AgeRating>
  <Web>https://example.org/a https://example.org/b</Web><Count>30</Count><Volume>4</Volume>
  <StoryArc>Arc A, Arc B,Arc C</StoryArc><StoryArcNumber>1,2.5</StoryArcNumber>
  <Characters>Kei, Ryo, Kei</Characters><Teams>Team X</Teams><Locations>Tokyo, Osaka</Locations>
  <GTIN>012345678905</GTIN>
</ComicInfo>"""


@pytest.mark.parametrize(
    ("manga", "direction"),
    [("YesAndRightToLeft", ReadingDirection.RTL), ("Yes", None), ("No", None), ("Unknown", None)],
)
def test_comicinfo_manga_reading_direction(tmp_path: Path, manga: str, direction: object) -> None:
    info = f"<ComicInfo><Manga>{manga}</Manga></ComicInfo>"
    path = write_cbz(tmp_path / "m.cbz", {**PAGES, "ComicInfo.xml": info})
    assert parse_cbz(path).reading_direction == direction


def test_comicinfo_extended_fields(tmp_path: Path) -> None:
    meta = parse_cbz(write_cbz(tmp_path / "x.cbz", {**PAGES, "ComicInfo.xml": EXTENDED_COMICINFO}))
    assert meta.reading_direction == ReadingDirection.RTL
    assert (meta.age_rating, meta.web_link) == ("Mature 17+", "https://example.org/a")
    assert (meta.issue_count, meta.volume) == (30, 4)
    assert meta.identifiers == (Identifier("gtin", "012345678905"),)
    assert meta.subjects == (
        Subject(SubjectKind.STORY_ARC, "Arc A", Decimal(1)),
        Subject(SubjectKind.STORY_ARC, "Arc B", Decimal("2.5")),
        Subject(SubjectKind.STORY_ARC, "Arc C"),  # no number given for it
        Subject(SubjectKind.CHARACTER, "Kei"),
        Subject(SubjectKind.CHARACTER, "Ryo"),
        Subject(SubjectKind.TEAM, "Team X"),
        Subject(SubjectKind.LOCATION, "Tokyo"),
        Subject(SubjectKind.LOCATION, "Osaka"),
    )


@pytest.mark.parametrize("fmt", ["cbz", "cbt", "cb7", "cbr"])
def test_archive_without_pages_is_an_error(tmp_path: Path, fmt: str) -> None:
    files: dict[str, bytes | str] = {"ComicInfo.xml": FULL_COMICINFO, "notes.txt": "no pages"}
    path = WRITERS[fmt](tmp_path / f"empty.{fmt}", files)
    with pytest.raises(ParseError, match="no page images") as info:
        PARSERS[fmt](path)
    assert "\n" not in str(info.value)


WRITERS: dict[str, Callable[[Path, dict[str, bytes | str]], Path]] = {
    "cbz": write_cbz,
    "cbt": write_cbt,
    "cb7": write_cb7,
    "cbr": write_cbr,
}

"""Messy libraries: untagged files named and filed the way real users keep them.

The tidy generator (`shelfscan.testing.library`) writes well-tagged books in
clean layouts; this one writes what breaks scanners: comics and manga with no
ComicInfo and scene-style names, flat and nested (`Specials/`, `Vol.1/Chapter 1/`,
noisy series folders), audiobook folders in Audiobookshelf's naming styles
(`{Narrator}`, `[ASIN]`, years, sequences), several single-file audiobooks in
one author folder, calibre folders holding one book in several formats next to
`metadata.opf` and `cover.jpg`, NAS and desktop junk folders holding copies of
real books, and names in legacy encodings (Latin-1, cp1251 bytes).

`generate_messy_library(out, seed)` writes the canonical set (every case once,
names as in the peers' documentation) and returns a manifest of the books a
scanner should find and their fields. `generate_messy_library(out, seed, books=N)`
adds generated books of the same kinds, with names drawn from the seed, until
there are N: the bench's messy library. Everything is deterministic from the seed.

CLI: ``python -m shelfscan.testing.messy --out DIR [--books N] [--seed S]``
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

from mutagen.id3 import ID3, TIT2, TRCK
from mutagen.mp4 import MP4

from shelfscan.testing.covers import cover_jpeg
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, epub_bytes
from shelfscan.testing.library import _m4b_skeleton, _mp3_frames

__all__ = ["MessyBook", "MessyManifest", "generate_messy_library", "main"]

MTIME = 1_704_067_200  # 2024-01-01T00:00:00Z: files never look "still being copied"


@dataclass(frozen=True, slots=True)
class MessyBook:
    """One book a scanner should find, with the fields it should read (None: not asserted).

    `files` are the paths relative to the library root as os.scandir gives them
    (a name that is not UTF-8 carries its bytes as surrogates), lead file first.
    """

    kind: str  # comic, manga, audiobook, ebook
    files: tuple[str, ...]
    title: str | None = None
    authors: tuple[str, ...] | None = None
    series: str | None = None
    number: Decimal | None = None
    narrators: tuple[str, ...] | None = None
    year: str | None = None
    asin: str | None = None
    sidecar_cover: bool = False


@dataclass(slots=True)
class MessyManifest:
    root: Path
    books: list[MessyBook] = field(default_factory=list)
    junk: list[str] = field(default_factory=list)  # files a scanner must skip


# --- file writers ------------------------------------------------------------------------------


def _cbz(seed: int, pages: int = 2) -> bytes:
    """A comic archive of small JPEG pages and no ComicInfo.xml: only its name speaks."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for page in range(pages):
            info = zipfile.ZipInfo(f"{page + 1:03d}.jpg", date_time=(2020, 1, 1, 0, 0, 0))
            archive.writestr(info, cover_jpeg(seed + page, size=(60, 90), target_bytes=1_500))
    return buffer.getvalue()


def _epub(title: str = "", authors: Sequence[str] = ()) -> bytes:
    """An EPUB; with no title and no authors its OPF says nothing a scanner can use."""
    return epub_bytes(
        EpubSpec(
            title=title,
            creators=tuple(CreatorSpec(a) for a in authors),
            style="epub2",
            language="en",
            chapters=(("One", "Text."),),
        )
    )


def _pdf() -> bytes:
    """A one-page PDF with no Info dictionary and no XMP: untagged."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _m4b(title: str | None = None) -> bytes:
    """A one-second silent M4B; `title` becomes its only tag (no album, no artist)."""
    data = _m4b_skeleton(22, [])
    if title is None:
        return data
    buffer = io.BytesIO(data)
    mp4 = MP4(buffer)
    mp4.add_tags()
    assert mp4.tags is not None
    mp4.tags["\xa9nam"] = [title]
    buffer.seek(0)
    mp4.save(buffer)
    return buffer.getvalue()


def _mp3(title: str | None = None, track: str | None = None) -> bytes:
    """A short silent MP3, untagged unless a title or track is given (ID3v2.4)."""
    audio = _mp3_frames(20)
    if title is None and track is None:
        return audio
    tags = ID3()
    if title is not None:
        tags.add(TIT2(encoding=3, text=[title]))
    if track is not None:
        tags.add(TRCK(encoding=3, text=[track]))
    buffer = io.BytesIO(audio)
    tags.save(buffer, v1=0, v2_version=4)
    return buffer.getvalue()


def _opf(title: str, author: str, series: str | None, index: str | None) -> bytes:
    """calibre's metadata.opf for one book (OPF 2, calibre:series meta)."""
    sort = ", ".join(reversed(author.rsplit(" ", 1)))
    metas = ""
    if series:
        metas = f'<meta name="calibre:series" content="{series}"/>'
        metas += f'<meta name="calibre:series_index" content="{index or "1"}"/>'
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        '<package xmlns="http://www.idpf.org/2007/opf" unique-identifier="uuid_id" version="2.0">'
        '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:opf="http://www.idpf.org/2007/opf">'
        f"<dc:title>{title}</dc:title>"
        f'<dc:creator opf:file-as="{sort}" opf:role="aut">{author}</dc:creator>'
        "<dc:language>en</dc:language>"
        f"{metas}</metadata></package>"
    ).encode()


# --- the library -------------------------------------------------------------------------------


class _Writer:
    """Writes files under the root and keeps the manifest; every file gets the same old mtime."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = MessyManifest(root)

    def file(self, rel: str | bytes, data: bytes) -> str:
        raw = rel if isinstance(rel, bytes) else rel.encode()
        path = os.path.join(os.fsencode(self.root), raw)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
        os.utime(path, ns=(MTIME * 10**9, MTIME * 10**9))
        return os.fsdecode(raw)

    def book(self, book: MessyBook) -> None:
        self.manifest.books.append(book)

    def junk(self, rel: str, data: bytes) -> None:
        self.manifest.junk.append(self.file(rel, data))


def _canonical(w: _Writer) -> None:
    """Every case once, named as the peers' users name them."""
    # Comics and manga, untagged: series and number come from the names.
    w.book(
        MessyBook(
            "comic",
            (w.file("Saga 001 (2012) (Digital) (Empire-Zone).cbz", _cbz(1)),),
            series="Saga",
            number=Decimal(1),
        )
    )
    for volume in (1, 2):
        w.book(
            MessyBook(
                "manga",
                (w.file(f"Manga/Dorohedoro/Dorohedoro v{volume:02d} (2010).cbz", _cbz(volume)),),
                series="Dorohedoro",
                number=Decimal(volume),
            )
        )
    w.book(
        MessyBook(
            "comic",
            (w.file("Comics/Batgirl/Batgirl Vol.2000 #57.cbz", _cbz(3)),),
            series="Batgirl",
            number=Decimal(57),
        )
    )
    w.book(
        MessyBook(
            "manga", (w.file("Manga/Btooom!/Specials/Art Book.cbz", _cbz(4)),), series="Btooom!"
        )
    )
    w.book(
        MessyBook(
            "manga", (w.file("Manga/Btooom!/Vol.1/Chapter 1/1.cbz", _cbz(5)),), series="Btooom!"
        )
    )
    w.book(
        MessyBook(
            "manga",
            (w.file("Manga/Kaguya-sama/Kaguya-sama c106.cbz", _cbz(8)),),
            series="Kaguya-sama",
        )
    )
    w.book(
        MessyBook(
            "comic",
            (w.file("BD/Asterix/Asterix T03.cbz", _cbz(9)),),
            series="Asterix",
            number=Decimal(3),
        )
    )
    noisy = "Akame ga KILL! ZERO (2016-2019) (Digital) (LuCaZ)"
    w.book(
        MessyBook(
            "manga",
            (
                w.file(
                    f"Manga/{noisy}/Akame ga KILL! ZERO v01 (2017) (Digital) (LuCaZ).cbz", _cbz(6)
                ),
            ),
            series="Akame ga KILL! ZERO",
            number=Decimal(1),
        )
    )

    # Audiobookshelf folder names, untagged parts.
    folder = "Audiobooks/Terry Goodkind/Sword of Truth/Vol 1 - 1994 - Wizards First Rule {Sam Tsoutsouvas}"
    w.book(
        MessyBook(
            "audiobook",
            tuple(w.file(f"{folder}/{n:02d}.mp3", _mp3()) for n in (1, 2, 3)),
            title="Wizards First Rule",
            authors=("Terry Goodkind",),
            series="Sword of Truth",
            number=Decimal(1),
            narrators=("Sam Tsoutsouvas",),
            year="1994",
        )
    )
    folder = "Audiobooks/Brandon Sanderson/Mistborn/Book 2 - The Well of Ascension {Michael Kramer}"
    w.book(
        MessyBook(
            "audiobook",
            tuple(w.file(f"{folder}/Part {n}.mp3", _mp3()) for n in (1, 2)),
            title="The Well of Ascension",
            authors=("Brandon Sanderson",),
            series="Mistborn",
            number=Decimal(2),
            narrators=("Michael Kramer",),
        )
    )
    folder = (
        "Audiobooks/Ichiro Kishimi & Fumitake Koga/The Courage to Be Disliked (2018) [B07DMBX2N3]"
    )
    w.book(
        MessyBook(
            "audiobook",
            (w.file(f"{folder}/The Courage to Be Disliked.m4b", _m4b()),),
            title="The Courage to Be Disliked",
            authors=("Ichiro Kishimi", "Fumitake Koga"),
            year="2018",
            asin="B07DMBX2N3",
        )
    )
    for folder, lead, book in (
        (
            "Audiobooks/Robin Hobb/Farseer/1. Assassin's Apprentice {Paul Boehmer}",
            "Assassin's Apprentice.m4b",
            MessyBook(
                "audiobook",
                (),
                title="Assassin's Apprentice",
                authors=("Robin Hobb",),
                series="Farseer",
                number=Decimal(1),
                narrators=("Paul Boehmer",),
            ),
        ),
        (
            "Audiobooks/Robin Hobb/Farseer/#3 - Assassin's Quest",
            "01.mp3",
            MessyBook(
                "audiobook",
                (),
                title="Assassin's Quest",
                authors=("Robin Hobb",),
                series="Farseer",
                number=Decimal(3),
            ),
        ),
        (
            "Audiobooks/Kishimi, Ichiro, Koga, Fumitake/The Courage to Be Happy",
            "The Courage to Be Happy.m4b",
            MessyBook(
                "audiobook",
                (),
                title="The Courage to Be Happy",
                authors=("Ichiro Kishimi", "Fumitake Koga"),
            ),
        ),
        (
            "Audiobooks/张三, 李四/书名",
            "书名.m4b",
            MessyBook("audiobook", (), title="书名", authors=("张三", "李四")),
        ),
    ):
        data = _mp3() if lead.endswith(".mp3") else _m4b()
        w.book(replace(book, files=(w.file(f"{folder}/{lead}", data),)))
    # Several single-file audiobooks in one author folder: tagged titles, then untagged.
    for title in ("Emma", "Persuasion"):
        w.book(
            MessyBook(
                "audiobook",
                (w.file(f"Audiobooks/Jane Austen/{title.lower()}.m4b", _m4b(title)),),
                title=title,
                authors=("Jane Austen",),
            )
        )
    for title in ("Murder on the Orient Express", "Death on the Nile"):
        w.book(
            MessyBook(
                "audiobook",
                (w.file(f"Audiobooks/Agatha Christie/{title}.m4b", _m4b()),),
                title=title,
                authors=("Agatha Christie",),
            )
        )
    for title, tagged in (
        ("A Wizard of Earthsea", True),
        ("The Tombs of Atuan", True),
        ("The Farthest Shore", False),
    ):  # mp3 files, one a book
        w.book(
            MessyBook(
                "audiobook",
                (
                    w.file(
                        f"Audiobooks/Ursula K. Le Guin/{title}.mp3", _mp3(title if tagged else None)
                    ),
                ),
                title=title,
                authors=("Ursula K. Le Guin",),
            )
        )
    # ...and one audiobook in parts next to them is still one book.
    folder = "Audiobooks/Herman Melville/Moby Dick"
    w.book(
        MessyBook(
            "audiobook",
            tuple(w.file(f"{folder}/Moby Dick - Part {n}.m4b", _m4b()) for n in (1, 2)),
            title="Moby Dick",
            authors=("Herman Melville",),
        )
    )

    # calibre: one book in several formats, untagged, described by metadata.opf + cover.jpg.
    folder = "Calibre Library/Frank Herbert/Dune (12)"
    files = (
        w.file(f"{folder}/Dune - Frank Herbert.epub", _epub()),
        w.file(f"{folder}/Dune - Frank Herbert.pdf", _pdf()),
    )
    w.file(f"{folder}/metadata.opf", _opf("Dune", "Frank Herbert", "Dune", "1"))
    w.file(f"{folder}/cover.jpg", cover_jpeg(12, size=(120, 180), target_bytes=4_000))
    w.book(
        MessyBook(
            "ebook",
            files,
            title="Dune",
            authors=("Frank Herbert",),
            series="Dune",
            number=Decimal(1),
            sidecar_cover=True,
        )
    )
    # The same book twice in a flat folder: same name, two formats, one book.
    w.book(
        MessyBook(
            "ebook",
            (
                w.file("Ebooks/Mary Shelley/Frankenstein.epub", _epub()),
                w.file("Ebooks/Mary Shelley/Frankenstein.pdf", _pdf()),
            ),
            title="Frankenstein",
            authors=("Mary Shelley",),
        )
    )
    w.book(
        MessyBook(
            "ebook",
            (w.file("Ebooks/Mary Shelley/The Last Man.epub", _epub()),),
            title="The Last Man",
            authors=("Mary Shelley",),
        )
    )

    # Names from old Samba shares: Latin-1 and cp1251 bytes, and one of nothing but high bytes.
    w.book(
        MessyBook(
            "ebook",
            (w.file("Noël/café.epub".encode("latin-1"), _epub()),),
            title="café",
            authors=("Noël",),
        )
    )
    w.book(
        MessyBook(
            "ebook",
            (w.file("Толстой/Война и мир.epub".encode("cp1251"), _epub()),),
            title="Война и мир",
            authors=("Толстой",),
        )
    )
    w.book(MessyBook("ebook", (w.file(b"\xc0\xc1\xc2.epub", _epub()),), title="АБВ", authors=()))

    # NAS, desktop and calibre junk: copies of real books, AppleDouble litter.
    w.junk(
        "Calibre Library/Frank Herbert/Dune (12)/@eaDir/Dune - Frank Herbert.epub/x.epub", _epub()
    )
    w.junk("@Recently-Snapshot/GMT+01_2024-01-01/Jane Austen/emma.m4b", _m4b("Emma"))
    w.junk("#recycle/Ebooks/Old Book.epub", _epub("Old Book", ("Someone",)))
    w.junk("#snapshot/daily/Ebooks/Mary Shelley/The Last Man.epub", _epub())
    w.junk("@Recycle/Comics/Saga 002.cbz", _cbz(7))
    w.junk("Calibre Library/.caltrash/b/Deleted Book.epub", _epub("Deleted", ("Gone",)))
    w.junk("__MACOSX/Manga/Dorohedoro/._Dorohedoro v01 (2010).cbz", b"\x00\x05\x16\x07junk")
    w.junk("Manga/Dorohedoro/._Dorohedoro v02 (2010).cbz", b"\x00\x05\x16\x07junk")
    w.junk(".Trash-1000/files/Trashed.epub", _epub("Trashed", ("Someone",)))
    w.junk("$RECYCLE.BIN/S-1-5-21/Binned.pdf", _pdf())
    w.junk("Ebooks/.DS_Store", b"\x00\x00\x00\x01Bud1")


# --- generated books, for size ----------------------------------------------------------------

_FIRST = ("Ada", "Boris", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas")
_LAST = ("Abara", "Berg", "Castell", "Dunmore", "Ekwueme", "Falk", "Grieve", "Holm", "Ivers")
_WORDS = (
    "Silent", "Harbor", "Iron", "Garden", "Winter", "Lantern", "Hollow", "Crown", "Ember",
    "Tide", "Ash", "Meridian", "Orchard", "Signal", "Quiet", "Thorn", "Atlas", "Drift",
)  # fmt: skip
_GROUPS = ("Empire-Zone", "LuCaZ", "Digital-Empire", "Oak", "danke-Empire")


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _words(rng: random.Random, k: int) -> str:
    return f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} {k}"


def _gen_comic(w: _Writer, rng: random.Random, k: int) -> None:
    series = f"{rng.choice(_WORDS)} {rng.choice(_WORDS)} X{k}"
    issue = rng.randint(1, 120)
    name = f"{series} {issue:03d} ({rng.randint(1990, 2024)}) (Digital) ({rng.choice(_GROUPS)}).cbz"
    rel = name if rng.random() < 0.5 else f"Comics/{series}/{name}"
    w.book(MessyBook("comic", (w.file(rel, _cbz(k)),), series=series, number=Decimal(issue)))


def _gen_audiobook(w: _Writer, rng: random.Random, k: int) -> None:
    author, series, title = _name(rng), _words(rng, k), _words(rng, k)
    narrator, number, year = _name(rng), rng.randint(1, 9), str(rng.randint(1950, 2024))
    folder = f"Audiobooks/{author}/{series}/Vol {number} - {year} - {title} {{{narrator}}}"
    parts = rng.randint(1, 3)
    w.book(
        MessyBook(
            "audiobook",
            tuple(w.file(f"{folder}/{n:02d}.mp3", _mp3()) for n in range(1, parts + 1)),
            title=title,
            authors=(author,),
            series=series,
            number=Decimal(number),
            narrators=(narrator,),
            year=year,
        )
    )


def _gen_audio_shelf(w: _Writer, rng: random.Random, k: int) -> None:
    author = f"{_name(rng)} {k}"
    for title in dict.fromkeys(_words(rng, k) for _ in range(rng.randint(2, 3))):
        w.book(
            MessyBook(
                "audiobook",
                (w.file(f"Audiobooks/{author}/{title}.m4b", _m4b()),),
                title=title,
                authors=(author,),
            )
        )


def _gen_calibre(w: _Writer, rng: random.Random, k: int) -> None:
    author, title = _name(rng), _words(rng, k)
    folder = f"Calibre Library/{author}/{title} ({k + 100})"
    files = tuple(
        w.file(f"{folder}/{title} - {author}.{ext}", _epub() if ext == "epub" else _pdf())
        for ext in ("epub", "pdf")
    )
    w.file(f"{folder}/metadata.opf", _opf(title, author, None, None))
    w.file(f"{folder}/cover.jpg", cover_jpeg(k, size=(60, 90), target_bytes=1_500))
    w.book(MessyBook("ebook", files, title=title, authors=(author,), sidecar_cover=True))


_GENERATORS: tuple[Callable[[_Writer, random.Random, int], None], ...] = (
    _gen_comic,
    _gen_audiobook,
    _gen_audio_shelf,
    _gen_calibre,
)


def generate_messy_library(out: Path, seed: int = 0, books: int | None = None) -> MessyManifest:
    """Write the messy library under `out` (which must not hold another library).

    Without `books`, the canonical set only; with it, generated books of the
    same kinds are added until there are at least `books` (a multi-book folder
    may overshoot by two).
    """
    out.mkdir(parents=True, exist_ok=True)
    writer = _Writer(out)
    _canonical(writer)
    rng = random.Random(f"messy:{seed}")
    k = 0
    while books is not None and len(writer.manifest.books) < books:
        _GENERATORS[k % len(_GENERATORS)](writer, rng, k)
        k += 1
    return writer.manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--books", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    manifest = generate_messy_library(args.out, args.seed, args.books)
    print(f"{len(manifest.books)} books, {len(manifest.junk)} junk files in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Audio technical fields, cue-sheet and Nero chapters, and rendered PDF covers: real scans, read
back through `export` (and the cover bytes through the pack they were stored in)."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import asyncpg
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TALB, TCOM, TIT2, TPE1, TPOS, TRCK, Encoding
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus
from PIL import Image

from shelfscan.covers import read_cover
from shelfscan.testing.covers import cover_jpeg
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, write_epub
from tests.formats.audio_files import minimal_flac, silent_mp3, silent_opus
from tests.formats.chpl import ChplLayout, chpl_box, m4b_with_chpl
from tests.formats.test_audio_fields import CUE
from tests.scanning import ScanFn, export

NERO = [(0.0, b"Prologue"), (0.4, "Kapitel 1 \u2013 Anfang".encode()), (1.2, b"Epilogue")]


def _mp3_part(path: Path, track: str, disc: str) -> None:
    silent_mp3(path)
    tag = ID3()
    tag.add(TIT2(encoding=Encoding.UTF8, text=[path.stem]))
    tag.add(TALB(encoding=Encoding.UTF8, text=["The Hobbit"]))
    tag.add(TPE1(encoding=Encoding.UTF8, text=["J.R.R. Tolkien"]))
    tag.add(TRCK(encoding=Encoding.UTF8, text=[track]))
    tag.add(TPOS(encoding=Encoding.UTF8, text=[disc]))
    tag.add(TCOM(encoding=Encoding.UTF8, text=["Howard Shore"]))
    tag.save(path)


def _library(root: Path) -> None:
    hobbit = root / "Tolkien" / "The Hobbit"
    hobbit.mkdir(parents=True)
    _mp3_part(hobbit / "b.mp3", "1/2", "1/1")  # file names sort against the tags: tags win
    _mp3_part(hobbit / "a.mp3", "2/2", "1/1")

    nero = root / "Herbert" / "Dune"
    nero.mkdir(parents=True)
    m4b = nero / "Dune.m4b"
    # Version 0 with Nero's reserved bytes: the form the old reader got 0 chapters from.
    m4b.write_bytes(m4b_with_chpl(chpl_box(NERO, version=0, layout=ChplLayout.NERO)))
    mp4 = MP4(m4b)
    mp4["©nam"], mp4["©alb"], mp4["©ART"] = ["Dune"], ["Dune"], ["Frank Herbert"]
    mp4["trkn"], mp4["disk"], mp4["©wrt"] = [(1, 1)], [(2, 3)], ["Composer Person"]
    mp4.save()

    mort = root / "Pratchett" / "Mort"
    mort.mkdir(parents=True)
    flac = FLAC(minimal_flac(mort / "the book.flac"))
    flac["ALBUM"], flac["ARTIST"], flac["TRACKNUMBER"] = "Mort", "Terry Pratchett", "1"
    flac["TRACKTOTAL"], flac["DISCNUMBER"], flac["COMPOSER"] = "1", "1/1", "Dave Greenslade"
    flac["CUESHEET"] = CUE
    flac.save()

    sidecar_cue = root / "Austen" / "Persuasion"
    sidecar_cue.mkdir(parents=True)
    other = FLAC(minimal_flac(sidecar_cue / "the book.flac"))
    other["ALBUM"], other["ARTIST"] = "Persuasion", "Jane Austen"
    other.save()
    (sidecar_cue / "the book.cue").write_text(CUE, "utf-8")

    emma = root / "Austen" / "Emma"
    emma.mkdir(parents=True)
    opus = OggOpus(silent_opus(emma / "part.opus", seconds=2))
    opus["ALBUM"], opus["ARTIST"], opus["TRACKNUMBER"] = "Emma", "Jane Austen", "3/7"
    opus["DISCNUMBER"], opus["COMPOSER"] = "2", "Someone Composing"
    opus.save()

    Image.new("RGB", (300, 450), (20, 160, 60)).save(root / "Green Report.pdf", "PDF")
    with_sidecar = root / "Sidecar Report"
    with_sidecar.mkdir()
    Image.new("RGB", (300, 450), (20, 160, 60)).save(with_sidecar / "report.pdf", "PDF")
    (with_sidecar / "cover.jpg").write_bytes(cover_jpeg(3, (40, 60), 1_000))

    write_epub(root / "plain.epub", EpubSpec(title="Plain", creators=(CreatorSpec("A Writer"),)))


def _file(books: list[dict[str, Any]], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    for book in books:
        for f in book["files"]:
            if f["path"] == path:
                return book, f
    raise AssertionError(f"{path} not exported")


async def test_media_fields_through_export(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _library(root)
    summary = await scan(root)
    assert summary.files_failed == 0
    books = await export(pool)

    hobbit, _ = _file(books, "Tolkien/The Hobbit/a.mp3")
    assert [f["path"] for f in hobbit["files"]] == [
        "Tolkien/The Hobbit/b.mp3",
        "Tolkien/The Hobbit/a.mp3",
    ]
    assert [f["audio"] for f in hobbit["files"]] == [
        {"album": "The Hobbit", "track_number": n, "track_total": 2, "disc_number": 1,
         "disc_total": 1, "composer": "Howard Shore", "codec": "mp3", "bitrate": 128000,
         "sample_rate": 44100, "channels": 1}
        for n in (1, 2)
    ]  # fmt: skip
    assert all(f["duration_s"] > 1.0 for f in hobbit["files"])

    _, dune = _file(books, "Herbert/Dune/Dune.m4b")
    assert [(c["title"], c["start_s"]) for c in dune["chapters"]] == [
        ("Prologue", 0.0),
        ("Kapitel 1 \u2013 Anfang", 0.4),
        ("Epilogue", 1.2),
    ]
    audio = dune["audio"]
    assert (audio["track_number"], audio["track_total"]) == (1, 1)
    assert (audio["disc_number"], audio["disc_total"], audio["composer"]) == (
        2,
        3,
        "Composer Person",
    )
    assert (audio["codec"], audio["sample_rate"], audio["channels"]) == ("aac", 22050, 1)

    _, mort = _file(books, "Pratchett/Mort/the book.flac")
    assert [c["title"] for c in mort["chapters"]] == [
        "Opening Credits",
        "Chapter One: \u00dcber",
        "Chapter 3",
    ]
    assert mort["audio"]["composer"] == "Dave Greenslade"
    assert (mort["audio"]["track_number"], mort["audio"]["track_total"]) == (1, 1)
    assert (mort["audio"]["codec"], mort["audio"]["channels"]) == ("flac", 2)

    _, persuasion = _file(books, "Austen/Persuasion/the book.flac")
    assert [c["start_s"] for c in persuasion["chapters"]] == [0.0, 192.493, 3662.987]

    _, emma = _file(books, "Austen/Emma/part.opus")
    assert emma["audio"] == {
        "album": "Emma", "track_number": 3, "track_total": 7, "disc_number": 2,
        "disc_total": None, "composer": "Someone Composing", "codec": "opus",
        "bitrate": emma["audio"]["bitrate"], "sample_rate": 48000, "channels": 2,
    }  # fmt: skip
    assert abs(emma["duration_s"] - 2.0) < 0.01

    green, green_file = _file(books, "Green Report.pdf")
    assert green_file["audio"] is None
    cover = green_file["cover"]
    assert (cover["mime"], cover["width"], cover["height"]) == ("image/jpeg", 400, 600)
    assert green["cover"]["sha256"] == cover["sha256"]
    assert green["field_sources"]["cover"] == "embedded"
    row = await pool.fetchrow(
        "SELECT pack, pack_offset, size FROM shelfscan.covers WHERE sha256 = $1", cover["sha256"]
    )
    data = read_cover(tmp_path / "data" / "covers", row["pack"], row["pack_offset"], row["size"])
    image = Image.open(io.BytesIO(data)).convert("RGB")
    colours = image.getcolors(image.width * image.height)
    assert colours is not None
    r, g, b = max(colours)[1]
    assert abs(r - 20) <= 6 and abs(g - 160) <= 6 and abs(b - 60) <= 6

    side, side_file = _file(books, "Sidecar Report/report.pdf")
    assert side_file["cover"] is None  # a cover sidecar: page 1 is not even rendered
    assert side["field_sources"]["cover"] == "sidecar"

    _, plain = _file(books, "plain.epub")
    assert plain["audio"] is None


async def test_rescans_replace_audio_rows(pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path) -> None:
    root = tmp_path / "lib"
    _library(root)
    await scan(root)
    part = root / "Tolkien" / "The Hobbit" / "b.mp3"
    tag = ID3(part)
    tag.add(TRCK(encoding=Encoding.UTF8, text=["1/9"]))
    tag.delall("TCOM")
    tag.save(part)
    os.utime(part, ns=(part.stat().st_atime_ns, part.stat().st_mtime_ns + 10**9))
    await scan(root)
    _, f = _file(await export(pool), "Tolkien/The Hobbit/b.mp3")
    assert (f["audio"]["track_number"], f["audio"]["track_total"]) == (1, 9)
    assert f["audio"]["composer"] is None
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.file_audio") == 6  # six audio files


async def test_an_edited_cue_sheet_rereads_its_flac(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    """A `.cue` beside a FLAC is tracked like the folder's other sidecars: fixing a chapter
    title in it (the FLAC untouched) refreshes the book's chapters on the next scan."""
    root = tmp_path / "lib"
    book = root / "Austen" / "Persuasion"
    book.mkdir(parents=True)
    flac = FLAC(minimal_flac(book / "the book.flac"))
    flac["ALBUM"], flac["ARTIST"] = "Persuasion", "Jane Austen"
    flac.save()
    cue = book / "the book.cue"
    cue.write_text(CUE, "utf-8")
    await scan(root)
    _, f = _file(await export(pool), "Austen/Persuasion/the book.flac")
    assert f["chapters"][0]["title"] == "Opening Credits"

    cue.write_text(CUE.replace("Opening Credits", "Opening Titles"), "utf-8")
    os.utime(cue, ns=(cue.stat().st_atime_ns, cue.stat().st_mtime_ns + 10**9))
    again = await scan(root)
    assert again.books_updated == 1
    _, f = _file(await export(pool), "Austen/Persuasion/the book.flac")
    assert [c["title"] for c in f["chapters"]][:2] == ["Opening Titles", "Chapter One: \u00dcber"]

    unchanged = await scan(root)
    assert (unchanged.books_updated, unchanged.books_unchanged) == (0, 1)


# The corpus's real files that carry the new fields (MANIFEST.md): beets writes the same
# placeholder set in every container, TRCK "2/3" / TPOS "4/5" or TRACKTOTAL/DISCTOTAL.
CORPUS_AUDIO = {
    "beets_full-mp3/beets_full.mp3": (2, 3, 4, 5, "the composer", "mp3"),
    "beets_full-m4a/beets_full.m4a": (2, 3, 4, 5, "the composer", "aac"),
    "beets_full-flac/beets_full.flac": (2, 3, 4, 5, "the composer", "flac"),
    "beets_full-ogg/beets_full.ogg": (2, 3, 4, 5, "the composer", "vorbis"),
    "beets_full-opus/beets_full.opus": (2, 3, 4, 5, "the composer", "opus"),
    "mutagen_silence-44-s-mp3/mutagen_silence-44-s.mp3": (2, 10, None, None, None, "mp3"),
    "mutagen_silence-44-s-flac/mutagen_silence-44-s.flac": (2, 10, None, None, None, "flac"),
    "chapterreader_test-m4b/chapterreader_test.m4b": (1, 1, None, None, None, "aac"),
    "tinytag_classical-m4a/tinytag_classical.m4a": (1, 2, None, None, "some composer", "aac"),
}


async def test_corpus_audio_fields_through_export(
    pool: asyncpg.Pool, scan: ScanFn, corpus_dir: Path, corpus_truth: dict[str, dict[str, Any]]
) -> None:
    await scan(corpus_dir / "audio")
    books = await export(pool)
    for path, (track, tracks, disc, discs, composer, codec) in CORPUS_AUDIO.items():
        _, f = _file(books, path)
        audio = f["audio"]
        assert (audio["track_number"], audio["track_total"]) == (track, tracks), path
        assert (audio["disc_number"], audio["disc_total"]) == (disc, discs), path
        assert (audio["composer"], audio["codec"]) == (composer, codec), path
        assert audio["sample_rate"] and audio["channels"] and audio["bitrate"], path
    _, beets = _file(books, "beets_full-mp3/beets_full.mp3")
    assert (beets["audio"]["bitrate"], beets["audio"]["sample_rate"]) == (80000, 44100)
    assert beets["audio"]["album"] == "the album"
    # Nero chpl is this file's only chapter list.
    _, nero = _file(books, "mutagen_ep7-m4b/mutagen_ep7.m4b")
    assert (
        len(nero["chapters"]) == corpus_truth["audio/mutagen_ep7-m4b/mutagen_ep7.m4b"]["chapters"]
    )
    assert len(nero["chapters"]) > 0

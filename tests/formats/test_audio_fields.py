"""Part numbers, composer and stream facts (Metadata.audio) per container, and cue sheets."""

from __future__ import annotations

from pathlib import Path

import pytest
from mutagen.flac import FLAC
from mutagen.id3 import ID3, TALB, TCOM, TIT2, TPOS, TRCK, Encoding
from mutagen.mp4 import MP4
from mutagen.oggopus import OggOpus

from shelfscan.formats.audio import parse_audio
from shelfscan.formats.audio.cue import decode_cue, parse_cue_text
from shelfscan.formats.records import AudioFacts
from tests.formats.audio_files import minimal_flac, silent_m4b, silent_mp3, silent_opus


def test_mp3_track_disc_composer_album(tmp_path: Path) -> None:
    path = silent_mp3(tmp_path / "part.mp3")
    tag = ID3()
    tag.add(TIT2(encoding=Encoding.UTF8, text=["Part 3"]))
    tag.add(TALB(encoding=Encoding.UTF8, text=["The Hobbit"]))
    tag.add(TRCK(encoding=Encoding.UTF8, text=["03/12"]))
    tag.add(TPOS(encoding=Encoding.UTF8, text=["2/2"]))
    tag.add(TCOM(encoding=Encoding.UTF8, text=["Howard Shore"]))
    tag.save(path)
    assert parse_audio(path).audio == AudioFacts(
        album="The Hobbit",
        track_number=3,
        track_total=12,
        disc_number=2,
        disc_total=2,
        composer="Howard Shore",
        codec="mp3",
        bitrate=128000,
        sample_rate=44100,
        channels=1,
    )


def test_m4b_trkn_disk_wrt(tmp_path: Path) -> None:
    path = silent_m4b(tmp_path / "book.m4b")
    mp4 = MP4(path)
    mp4["©alb"] = ["Dune"]
    mp4["trkn"] = [(4, 9)]
    mp4["disk"] = [(1, 3)]
    mp4["©wrt"] = ["Frank Herbert"]
    mp4.save()
    facts = parse_audio(path).audio
    assert facts is not None
    assert (facts.album, facts.track_number, facts.track_total) == ("Dune", 4, 9)
    assert (facts.disc_number, facts.disc_total, facts.composer) == (1, 3, "Frank Herbert")
    assert (facts.codec, facts.sample_rate, facts.channels) == ("aac", 22050, 1)
    assert facts.bitrate is not None and facts.bitrate > 0


def test_flac_vorbis_numbers_and_totals(tmp_path: Path) -> None:
    path = minimal_flac(tmp_path / "cd1.flac")
    flac = FLAC(path)
    flac["ALBUM"] = "Mort"
    flac["TRACKNUMBER"] = "7"
    flac["TRACKTOTAL"] = "14"
    flac["DISCNUMBER"] = "1"
    flac["TOTALDISCS"] = "2"
    flac["COMPOSER"] = "Dave Greenslade"
    flac.save()
    facts = parse_audio(path).audio
    assert facts == AudioFacts(
        album="Mort",
        track_number=7,
        track_total=14,
        disc_number=1,
        disc_total=2,
        composer="Dave Greenslade",
        codec="flac",
        bitrate=facts.bitrate if facts else None,
        sample_rate=44100,
        channels=2,
    )


def test_opus_numbers_and_stream(tmp_path: Path) -> None:
    path = silent_opus(tmp_path / "part.opus", seconds=2)
    opus = OggOpus(path)
    opus["ALBUM"] = "Emma"
    opus["TRACKNUMBER"] = "2/5"
    opus["DISCNUMBER"] = "1 of 1"
    opus["COMPOSER"] = "Jane Austen"
    opus.save()
    meta = parse_audio(path)
    assert meta.format == "opus"
    assert meta.duration_s == pytest.approx(2.0)
    facts = meta.audio
    assert facts is not None
    assert (facts.track_number, facts.track_total, facts.disc_number, facts.disc_total) == (
        2,
        5,
        1,
        1,
    )
    assert (facts.album, facts.composer, facts.codec) == ("Emma", "Jane Austen", "opus")
    assert (facts.sample_rate, facts.channels) == (48000, 2)


@pytest.mark.parametrize(
    ("track", "expected"),
    [("5", (5, None)), ("05/10", (5, 10)), ("0", (None, None)), ("A1", (None, None)),
     ("3 of 4", (3, 4)), ("", (None, None)), ("2/0", (2, None))],
)  # fmt: skip
def test_track_number_forms(tmp_path: Path, track: str, expected: tuple[int | None, ...]) -> None:
    path = minimal_flac(tmp_path / "t.flac")
    flac = FLAC(path)
    flac["TRACKNUMBER"] = track or " "
    flac.save()
    facts = parse_audio(path).audio
    assert facts is not None
    assert (facts.track_number, facts.track_total) == expected


CUE = """REM GENRE Audiobook
PERFORMER "Someone"
TITLE "The Book"
FILE "the book.wav" WAVE
  TRACK 01 AUDIO
    TITLE "Opening Credits"
    INDEX 01 00:00:00
  TRACK 02 AUDIO
    TITLE "Chapter One: \u00dcber"
    INDEX 00 03:10:00
    INDEX 01 03:12:37
  TRACK 03 AUDIO
    INDEX 01 61:02:74
"""

TWO_FILES = """FILE "disc1.flac" WAVE
  TRACK 01 AUDIO
    TITLE "A"
    INDEX 01 00:00:00
FILE "disc2.flac" WAVE
  TRACK 02 AUDIO
    TITLE "B"
    INDEX 01 00:00:00
  TRACK 03 AUDIO
    TITLE "C"
    INDEX 01 10:00:00
"""


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        (CUE, "the book.flac", [("Opening Credits", 0.0), ("Chapter One: \u00dcber", 192.493),
                                ("Chapter 3", 3662.987)]),
        (CUE.replace("\n", "\r\n"), None, [("Opening Credits", 0.0),
                                           ("Chapter One: \u00dcber", 192.493), ("Chapter 3", 3662.987)]),
        (TWO_FILES, "disc2.flac", [("B", 0.0), ("C", 600.0)]),
        (TWO_FILES, "DISC1.FLAC", [("A", 0.0)]),
        (TWO_FILES, "other.flac", []),
        ('TRACK 01 AUDIO\n  TITLE "Bare"\n  INDEX 01 00:01:00\n', "x.flac", [("Bare", 1.0)]),
        ('FILE "a.wav" WAVE\n  TRACK 01 AUDIO\n    TITLE "No index"\n', "a.flac", []),
        ("not a cue sheet at all", "a.flac", []),
    ],
)  # fmt: skip
def test_cue_text(text: str, name: str | None, expected: list[tuple[str, float]]) -> None:
    assert [(c.title, c.start_s) for c in parse_cue_text(text, name)] == expected


def test_cue_decoding() -> None:
    assert decode_cue(b'\xef\xbb\xbfTITLE "\xc3\x9c"') == 'TITLE "\u00dc"'
    assert decode_cue(b'TITLE "\xdcber \x96 x"') == 'TITLE "\u00dcber \u2013 x"'  # cp1252


def test_flac_embedded_cuesheet_comment_gives_chapters(tmp_path: Path) -> None:
    path = minimal_flac(tmp_path / "the book.flac", seconds=2)
    flac = FLAC(path)
    flac["CUESHEET"] = CUE
    flac.save()
    titles = [c.title for c in parse_audio(path).chapters]
    assert titles == ["Opening Credits", "Chapter One: \u00dcber", "Chapter 3"]


@pytest.mark.parametrize("cue_name", ["the book.cue", "the book.flac.cue"])
def test_flac_cue_sidecar_gives_chapters(tmp_path: Path, cue_name: str) -> None:
    path = minimal_flac(tmp_path / "the book.flac")
    (tmp_path / cue_name).write_bytes(CUE.replace("\u00dc", "\xdc").encode("cp1252"))
    chapters = parse_audio(path).chapters
    assert [(c.title, c.start_s) for c in chapters][:2] == [
        ("Opening Credits", 0.0),
        ("Chapter One: \u00dcber", 192.493),
    ]


def test_vorbis_chapters_win_over_a_cue_sheet(tmp_path: Path) -> None:
    path = minimal_flac(tmp_path / "the book.flac")
    flac = FLAC(path)
    flac["CHAPTER001"] = "00:00:00.000"
    flac["CHAPTER001NAME"] = "Tagged"
    flac["CUESHEET"] = CUE
    flac.save()
    assert [c.title for c in parse_audio(path).chapters] == ["Tagged"]

"""Nero `chpl` chapters written every way the format allows, checked against mutagen's reader.

mutagen reads the count at byte 8 of the payload whatever the version (the
Nero/ffmpeg layout), so it is the oracle wherever that layout holds: NERO boxes
of both versions, and MP4V2 boxes of up to 255 chapters (whose 32-bit count
ends at byte 8). Where mutagen cannot read the layout (BARE boxes, MP4V2 with
more than 255 chapters) the list that was written is the oracle.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mutagen.mp4 import MP4

from shelfscan.formats.audio import parse_audio
from tests.formats.chpl import ChplLayout, chpl_box, m4b_with_chpl


def _chapters(count: int, title_bytes: int = 0) -> list[tuple[float, bytes]]:
    out = []
    for i in range(count):
        title = f"Kapitel {i + 1} – Überfahrt".encode()
        if title_bytes:  # pad with two-byte characters up to the limit, never splitting one
            title = (title + "é".encode() * 200)[:title_bytes]
            title = title.decode("utf-8", "ignore").encode()
        out.append((i * 61.25 + 0.0005 * (i % 3), title))
    return out


def _write(
    tmp_path: Path, chapters: list[tuple[float, bytes]], version: int, layout: ChplLayout
) -> Path:
    path = tmp_path / f"nero-{layout.value}-v{version}-{len(chapters)}.m4b"
    path.write_bytes(m4b_with_chpl(chpl_box(chapters, version=version, layout=layout)))
    return path


def _ours(path: Path) -> list[tuple[float | None, str]]:
    return [(c.start_s, c.title) for c in parse_audio(path).chapters]


def _written(chapters: list[tuple[float, bytes]]) -> list[tuple[float | None, str]]:
    return [(round(round(s * 1e7) / 1e7, 3), t.decode()) for s, t in chapters]


FORMS = [
    (layout, version, count, title_bytes)
    for layout in ChplLayout
    for version in (0, 1)
    for count, title_bytes in ((1, 0), (12, 0), (40, 255), (255, 0), (255, 254))
]


@pytest.mark.parametrize(("layout", "version", "count", "title_bytes"), FORMS)
def test_every_chpl_form_yields_every_chapter(
    tmp_path: Path, layout: ChplLayout, version: int, count: int, title_bytes: int
) -> None:
    chapters = _chapters(count, title_bytes)
    path = _write(tmp_path, chapters, version, layout)
    ours = _ours(path)
    assert ours == _written(chapters)
    assert len(ours) == count
    if layout is not ChplLayout.BARE:
        oracle = [(round(c.start, 3), c.title) for c in MP4(path).chapters]
        assert ours == oracle


@pytest.mark.parametrize("version", [0, 1])
def test_more_than_255_chapters_in_a_32_bit_count(tmp_path: Path, version: int) -> None:
    chapters = _chapters(300)
    path = _write(tmp_path, chapters, version, ChplLayout.MP4V2)
    ours = _ours(path)
    assert len(ours) == 300
    assert ours == _written(chapters)
    # mutagen sees only the count's low byte: what it reads is a prefix of ours.
    oracle = [(round(c.start, 3), c.title) for c in MP4(path).chapters]
    assert len(oracle) == 300 % 256
    assert ours[: len(oracle)] == oracle


def test_longest_titles_keep_every_byte(tmp_path: Path) -> None:
    chapters = [(0.0, b"x" * 255), (5.0, "\u20ac".encode() * 85)]  # 255 bytes each
    path = _write(tmp_path, chapters, 1, ChplLayout.NERO)
    titles = [t for _, t in _ours(path)]
    assert titles == ["x" * 255, "\u20ac" * 85]


def test_empty_and_broken_titles_are_named_by_position(tmp_path: Path) -> None:
    chapters = [(0.0, b""), (2.0, b"\xff\xfeBad"), (4.0, b"Good")]
    path = _write(tmp_path, chapters, 1, ChplLayout.NERO)
    titles = [t for _, t in _ours(path)]
    assert titles[0] == "Chapter 1"
    assert titles[1].endswith("Bad")  # undecodable bytes replaced, the rest kept
    assert titles[2] == "Good"


def test_truncated_chpl_keeps_the_complete_entries(tmp_path: Path) -> None:
    full = chpl_box(_chapters(5), version=1, layout=ChplLayout.NERO)
    cut = len(full) - 7  # the last entry loses its title's tail
    truncated = cut.to_bytes(4, "big") + full[4:cut]
    path = tmp_path / "cut.m4b"
    path.write_bytes(m4b_with_chpl(truncated))
    assert _ours(path) == _written(_chapters(4))

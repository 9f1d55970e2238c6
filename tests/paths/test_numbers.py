"""Numbers in names: volume and chapter markers, ranges, years, bare trailing numbers.

Conventions: Kavita's ParseVolume/ParseChapter tests (markers in Latin, Cyrillic, CJK,
Korean and Thai scripts; ranges such as "c001-008" and "1-3巻"; "vol_356-1" is volume 356),
its MinNumberFromRange test (a range reads as its first number) and the issue's list.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from shelfscan.paths import (
    find_chapter,
    find_special,
    find_volume,
    group_year,
    parse_decimal,
    series_and_year,
    spaced,
    split_name,
    strip_groups,
    trailing_number,
)

N = None
# text -> (volume, chapter) as NumberRange prints them
MARKERS = [
    ("Vol. 1", "1", N), ("Vol 1", "1", N), ("Vol.4", "4", N), ("Vol-1", "1", N),
    ("vol 356-1", "356", N), ("Volume 12", "12", N), ("Volumes 1-3", "1-3", N),
    ("v01", "1", N), ("V2000", "2000", N), ("v1.5", "1.5", N), ("v16-17", "16-17", N),
    ("Tome 2", "2", N), ("T3", "3", N), ("t6", "6", N), ("Том 1", "1", N),
    ("Тома 1-4", "1-4", N), ("第03卷", "3", N), ("第1册", "1", N), ("1巻", "1", N),
    ("1-3巻", "1-3", N), ("卷2", "2", N), ("7.5권", "7.5", N), ("เล่ม 1", "1", N),
    ("เล่มที่ 5", "5", N), ("시즌34", "34", N), ("S01 014", "1", N),
    ("#57", N, "57"), ("#12.5", N, "12.5"), ("issue #25", N, "25"), ("Ch. 001", N, "1"),
    ("ch.09", N, "9"), ("Ch01", N, "1"), ("Chp. 1", N, "1"), ("Chapter 001", N, "1"),
    ("chapters 101-108", N, "101-108"), ("c106", N, "106"), ("c001-008", N, "1-8"),
    ("c01-c04", N, "1-4"), ("c001-006x1", N, "1-6"), ("Chapter11v2", N, "11"),
    ("Episode 406", N, "406"), ("Ep. 001", N, "1"), ("Глава 3", N, "3"),
    ("2 Глава", N, "2"), ("ตอนที่ 5", N, "5"), ("บทที่ 112", N, "112"),
    ("第3话", N, "3"), ("第10話", N, "10"), ("106화", N, "106"), ("13회", N, "13"),
    ("13장", N, "13"), ("38-1화", N, "38"), ("Ch.252-005", N, "252"),
    ("Vol. 30 Ch. 187.5", "30", "187.5"), ("v02 ch10", "2", "10"), ("v01-c001", "1", "1"),
    ("Том 1 Глава 3", "1", "3"), ("卷2第25话", "2", "25"), ("63권#200", "63", "200"),
    ("Episode 3 - x #02", N, "2"), ("7thGARDEN", N, N), ("U12", N, N), ("c2c", N, N),
    ("Chapter", N, N), ("Volume Announcement", N, N), ("vtuber", N, N),
]  # fmt: skip


@pytest.mark.parametrize(("text", "volume", "chapter"), MARKERS)
def test_markers(text: str, volume: str | None, chapter: str | None) -> None:
    found_volume, found_chapter = find_volume(text), find_chapter(text)
    assert (
        None if found_volume is None or found_volume.number is None else str(found_volume.number),
        None
        if found_chapter is None or found_chapter.number is None
        else str(found_chapter.number),
    ) == (volume, chapter)


YEARS = [
    ("2012", "2012"), ("1966-02", "1966"), ("December, 2004", "2004"), ("Sep 1973", "1973"),
    ("March 2016", "2016"), ("1984-04-28", "1984"), ("2016-2019", "2016"), ("09-10 1943", "1943"),
    ("Digital", N), ("1", N), ("Empire-Zone", N), ("12345", N), ("v01", N),
]  # fmt: skip


@pytest.mark.parametrize(("group", "year"), YEARS)
def test_group_years(group: str, year: str | None) -> None:
    assert group_year(group) == year


TRAILING = [
    ("Saga 001", "1"), ("spawn-123", "123"), ("Bleach 001-003", "1-3"), ("Beelzebub 172 RHS", "172"),
    ("Beelzebub 153b", "153.5"), ("Invincible 033.5", "33.5"), ("Saga", N), ("Mazebook", N),
]  # fmt: skip


@pytest.mark.parametrize(("segment", "number"), TRAILING)
def test_trailing_numbers(segment: str, number: str | None) -> None:
    found = trailing_number(segment)
    assert (None if found is None else str(found[0])) == number


SPECIAL = [
    ("Beastars SP01", True), ("Batman Annual", False), ("X-23 One Shot", False), ("Omake", True),
    ("Love Hina - Special", True), ("Specialist v01", False), ("Mazebook 001", False),
    ("Extraordinary", False),
]  # fmt: skip


@pytest.mark.parametrize(("text", "special"), SPECIAL)
def test_specials(text: str, special: bool) -> None:
    assert (find_special(text) is not None) is special


def test_decimals_and_names() -> None:
    assert parse_decimal("001") == Decimal(1)
    assert parse_decimal("033.5") == Decimal("33.5")
    assert parse_decimal("x") is None
    assert split_name("Saga 001 (2012).cbz") == ("Saga 001 (2012)", "cbz")
    assert split_name("Book.kepub.epub") == ("Book", "epub")
    assert split_name("Mr. Smith") == ("Mr. Smith", "")
    assert spaced("B_Gata_H_Kei") == "B Gata H Kei"
    assert spaced("Gantz.V26", dots=True) == "Gantz V26"
    assert spaced("Superman v1.5", dots=True) == "Superman v1.5"
    assert strip_groups("Saga 001 (2012) [Group] {x} 【y】") == (
        "Saga 001",
        ("2012", "Group", "x", "y"),
    )
    assert strip_groups("Witchblade 089 (Top Cow (Image Comics))")[0] == "Witchblade 089"
    assert strip_groups("諌山創] 進撃の巨人")[0] == "諌山創] 進撃の巨人"


SERIES = [
    ("Akame ga KILL! ZERO (2016-2019) (Digital) (LuCaZ)", ("Akame ga KILL! ZERO", "2016")),
    ("Batman (2016)", ("Batman", "2016")),
    ("Battle Royale,", ("Battle Royale", N)),
    ("Hentai Ouji to Warawanai Neko.", ("Hentai Ouji to Warawanai Neko.", N)),
    ("Green Lantern - Circle of Fire Special - Adam Strange", ("Green Lantern - Circle of Fire - Adam Strange", N)),
    ("Fables 2010", ("Fables 2010", N)),
    ("[Group] Naruto [Digital]", ("Naruto", N)),
    ("- The Title", ("The Title", N)),
    ("Batman 1989-1995", ("Batman", "1989")),
    ("___", (N, N)),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), SERIES)
def test_series_cleaning(text: str, expected: tuple[str | None, str | None]) -> None:
    assert series_and_year(text) == expected

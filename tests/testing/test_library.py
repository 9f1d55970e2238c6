"""The library generator: deterministic, realistic in shape, and true to its manifest."""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import warnings
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import mutagen
import pytest
from ebooklib import epub
from PIL import Image

from shelfscan.testing import library
from shelfscan.testing.library import (
    MANIFEST_NAME,
    MTIME_EPOCH,
    LibraryManifest,
    ManifestEntry,
    generate_library,
    generate_library_cached,
    isbn13_check_digit,
    sanitize_name,
)

SMALL: dict[str, Any] = {"books": 60, "audio": 14, "seed": 7, "chapter_bytes": 1_500}
OPF = "{http://www.idpf.org/2007/opf}"


def _snapshot(root: Path) -> dict[str, tuple[int, str | None]]:
    """relative path -> (mtime_ns, content hash or None for folders), root included."""
    snap: dict[str, tuple[int, str | None]] = {".": (root.stat().st_mtime_ns, None)}
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            path = Path(folder, name)
            snap[path.relative_to(root).as_posix()] = (path.stat().st_mtime_ns, None)
        for name in files:
            path = Path(folder, name)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            snap[path.relative_to(root).as_posix()] = (path.stat().st_mtime_ns, digest)
    return snap


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> LibraryManifest:
    return generate_library(tmp_path_factory.mktemp("small") / "lib", jobs=1, **SMALL)


@pytest.fixture(scope="module")
def small_entries(small: LibraryManifest) -> list[ManifestEntry]:
    return list(small.entries())


@pytest.fixture(scope="module")
def thousand(tmp_path_factory: pytest.TempPathFactory) -> list[ManifestEntry]:
    """1,000 books as placeholders: the manifest carries the full metadata."""
    result = generate_library(
        tmp_path_factory.mktemp("k") / "lib", books=1_000, seed=1, placeholders=True, jobs=2
    )
    return list(result.entries())


def test_same_seed_is_byte_identical_for_any_jobs(small: LibraryManifest, tmp_path: Path) -> None:
    again = generate_library(tmp_path / "again", jobs=2, **SMALL)
    first, second = _snapshot(small.root), _snapshot(again.root)
    assert first == second
    assert small.total_bytes == again.total_bytes and small.files == again.files
    assert (small.books, small.audio) == (60, 14) and small.files > 74  # multi-part MP3s


def test_other_seed_differs(small: LibraryManifest, tmp_path: Path) -> None:
    other = generate_library(tmp_path / "other", **{**SMALL, "seed": 8})
    assert _snapshot(other.root) != _snapshot(small.root)


def test_mtimes_are_fixed(small: LibraryManifest, small_entries: list[ManifestEntry]) -> None:
    by_path = {e.path: e for e in small_entries}
    for index, entry in enumerate(small_entries):
        assert entry.mtime == MTIME_EPOCH + index
        assert (small.root / entry.path).stat().st_mtime == entry.mtime
    newest = max(e.mtime for e in small_entries)
    assert small.root.stat().st_mtime == newest
    assert (small.root / MANIFEST_NAME).stat().st_mtime == MTIME_EPOCH
    for folder, _dirs, _files in os.walk(small.root / "ebooks"):
        rel = Path(folder).relative_to(small.root).as_posix()
        below = [e.mtime for p, e in by_path.items() if p.startswith(rel + "/")]
        assert Path(folder).stat().st_mtime == max(below)


def test_manifest_matches_files(small: LibraryManifest, small_entries: list[ManifestEntry]) -> None:
    on_disk = {p.relative_to(small.root).as_posix() for p in small.root.rglob("*") if p.is_file()}
    assert on_disk == {e.path for e in small_entries} | {MANIFEST_NAME}
    assert len(small_entries) == small.files
    for entry in small_entries:
        assert (small.root / entry.path).stat().st_size == entry.bytes > 0
    assert sum(e.bytes for e in small_entries) == small.total_bytes
    lines = (small.root / MANIFEST_NAME).read_text("utf-8").splitlines()
    assert [ManifestEntry.from_json(line) for line in lines] == small_entries
    assert json.loads(lines[0])["creators"][0].keys() == {"name", "role", "file_as"}


def test_epubs_read_back_as_the_manifest_says(
    small: LibraryManifest, small_entries: list[ManifestEntry]
) -> None:
    for entry in small_entries:
        if entry.kind != "epub":
            continue
        path = small.root / entry.path
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
            first = archive.infolist()[0]
            assert (first.filename, first.compress_type) == ("mimetype", zipfile.ZIP_STORED)
            chapters = [n for n in archive.namelist() if "chapter_" in n]
            assert len(chapters) == entry.chapters
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = epub.read_epub(str(path))
        titles = [t for t, _ in book.get_metadata("DC", "title")]
        creators = book.get_metadata("DC", "creator")
        assert [name for name, _ in creators] == [c.name for c in entry.creators]
        assert [s for s, _ in book.get_metadata("DC", "subject")] == list(entry.genres)
        assert book.get_metadata("DC", "language")[0][0] == entry.language
        identifiers = [v for v, _ in book.get_metadata("DC", "identifier")]
        metas = {a.get("name"): a.get("content") for _, a in book.get_metadata("OPF", "meta")}
        assert metas.get("calibre:series") == entry.series
        assert metas.get("calibre:series_index") == entry.series_index
        if entry.description is not None:
            assert book.get_metadata("DC", "description")[0][0] == entry.description
        if entry.style == "epub2":
            assert entry.subtitle is None
            assert titles == [entry.title]
            assert [a[f"{OPF}role"] for _, a in creators] == [c.role for c in entry.creators]
            assert identifiers == [entry.uuid, entry.isbn]
        else:
            assert titles == [entry.title] + ([entry.subtitle] if entry.subtitle else [])
            assert identifiers == [f"urn:uuid:{entry.uuid}", f"urn:isbn:{entry.isbn}"]
        images = [i for i in book.get_items() if i.media_type == "image/jpeg"]
        assert len(images) == int(entry.has_cover)
        for item in images:
            image = Image.open(io.BytesIO(item.get_content()))
            image.load()
            assert (image.format, image.size) == ("JPEG", (400, 600))


def test_distribution_at_1000_books(thousand: list[ManifestEntry]) -> None:
    assert len(thousand) == 1_000
    primary = collections.Counter(e.creators[0].name for e in thousand)
    assert len(primary) == 200  # books / 5, every author owns at least one book
    people = {c.name for e in thousand for c in e.creators}
    assert people == set(primary)
    counts = sorted(primary.values(), reverse=True)
    assert counts[0] >= 20 and counts[len(counts) // 2] <= 4  # power law: long tail, few big
    genres = collections.Counter(g for e in thousand for g in e.genres)
    assert 30 <= len(genres) <= 50
    assert all(len(set(e.genres)) == 3 for e in thousand)
    top = genres.most_common()
    assert top[0][1] > 4 * top[-1][1]  # Zipf-like
    series = collections.defaultdict(list)
    for entry in thousand:
        if entry.series:
            series[entry.series].append(entry)
    assert len(series) == 80  # 8% of the book count
    for books in series.values():
        assert 2 <= len(books) <= 12
        assert len({b.creators[0].name for b in books}) == 1  # one owner per series
        assert all(b.series_index for b in books)
    fractional = sum("." in (e.series_index or "") for e in thousand if e.series)
    assert 0 < fractional < 0.12 * sum(len(b) for b in series.values())
    creators_per_book = sum(len(e.creators) for e in thousand) / len(thousand)
    assert 1.2 <= creators_per_book <= 1.6
    assert all(1 <= len(e.creators) <= 3 for e in thousand)
    roles = collections.Counter(c.role for e in thousand for c in e.creators)
    assert roles["aut"] > 0.8 * sum(roles.values()) and {"edt", "trl", "ill"} <= set(roles)
    styles = collections.Counter(e.style for e in thousand)
    assert 0.55 <= styles["epub2"] / 1_000 <= 0.65 and styles["epub3"] > 0
    for entry in thousand:
        assert entry.isbn is not None and len(entry.isbn) == 13 and entry.isbn.isdigit()
        assert entry.isbn[-1] == isbn13_check_digit(entry.isbn[:12])
        assert entry.authors == tuple(c.name for c in entry.creators if c.role == "aut")
    assert len({e.uuid for e in thousand}) == 1_000
    assert any(not name.isascii() for name in people)
    assert any(e.description and "<p>" in e.description for e in thousand)


def test_paths_follow_the_abs_layout(thousand: list[ManifestEntry]) -> None:
    folded = [e.path.casefold() for e in thousand]
    assert len(set(folded)) == len(folded)
    for entry in thousand:
        parts = entry.path.split("/")
        assert parts[0] == "ebooks"
        assert len(parts) == (5 if entry.series else 4)
        author = sanitize_name(entry.creators[0].name)
        assert parts[1] == author
        if entry.series:
            assert parts[2] == sanitize_name(entry.series)
        assert parts[-1] == f"{sanitize_name(entry.title)} - {author}.epub"
        assert parts[-2].startswith(sanitize_name(entry.title))
        assert not any(ch in part for part in parts for ch in '<>:"\\|?*')
    # second editions (same title, any case) get " (2)" folders
    assert any(e.path.split("/")[-2].endswith(" (2)") for e in thousand)


def _walk_boxes(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """MP4 box name -> (payload start, end) for the boxes directly inside [start, end)."""
    boxes = {}
    while start < end:
        size = int.from_bytes(data[start : start + 4], "big")
        boxes[data[start + 4 : start + 8]] = (start + 8, start + size)
        start += size
    return boxes


def test_audio_reads_back_as_the_manifest_says(
    small: LibraryManifest, small_entries: list[ManifestEntry]
) -> None:
    audio = [e for e in small_entries if e.kind != "epub"]
    assert {e.kind for e in audio} == {"mp3", "m4b"}
    for entry in audio:
        path = small.root / entry.path
        parsed = mutagen.File(path)
        assert entry.seconds is not None
        assert parsed.info.length == pytest.approx(entry.seconds, abs=1e-6)
        assert 15 <= entry.seconds <= 45
        assert entry.narrators and not set(entry.narrators) & set(entry.authors)
        assert entry.isbn is None and entry.style is None
        if entry.kind == "mp3":
            tags = parsed.tags
            assert tags.version[:2] == (2, 4)
            assert tags["TALB"].text == [entry.title]
            assert tags["TPE1"].text == list(entry.authors)
            assert tags["TPE2"].text == [entry.authors[0]]
            assert tags["TXXX:NARRATOR"].text == list(entry.narrators)
            assert tags["TCON"].text == list(entry.genres)
            assert tags["TRCK"].text == [entry.track]
            assert str(tags["TDRC"].text[0]) == entry.date
            assert tags["TPUB"].text == [entry.publisher]
            assert tags["COMM::eng"].text == [entry.description]
            series = tags.get("TXXX:SERIES")
            assert (series.text[0] if series else None) == entry.series
            part = tags.get("TXXX:SERIES-PART")
            assert (part.text[0] if part else None) == entry.series_index
            pictures = tags.getall("APIC")
            covers = [p.data for p in pictures]
            assert parsed.info.sample_rate == 44_100 and entry.chapters == 0
        else:
            tags = parsed.tags
            assert tags["\xa9nam"] == [entry.title] and tags["\xa9alb"] == [entry.title]
            assert tags["\xa9ART"] == list(entry.authors)
            assert tags["\xa9wrt"] == list(entry.narrators)
            assert tags["\xa9gen"] == list(entry.genres)
            narrators = tags["----:com.apple.iTunes:NARRATOR"]
            assert [bytes(v).decode() for v in narrators] == list(entry.narrators)
            series = tags.get("----:com.apple.iTunes:SERIES")
            assert (bytes(series[0]).decode() if series else None) == entry.series
            assert [c.title for c in parsed.chapters] == [f"Chapter {k}" for k in range(1, 6)]
            assert parsed.chapters[0].start == 0 and entry.chapters == 5
            assert parsed.info.codec == "mp4a.40.2" and parsed.info.sample_rate == 22_050
            covers = [bytes(c) for c in tags.get("covr", [])]
            # the sample table still points at the silent frames after mutagen's edit
            data = path.read_bytes()
            top = _walk_boxes(data, 0, len(data))
            assert data[top[b"ftyp"][0] : top[b"ftyp"][0] + 4] == b"M4B "
            box = top[b"moov"]
            for name in (b"trak", b"mdia", b"minf", b"stbl"):
                box = _walk_boxes(data, *box)[name]
            stco = _walk_boxes(data, *box)[b"stco"]
            offset = int.from_bytes(data[stco[0] + 8 : stco[0] + 12], "big")
            assert offset == top[b"mdat"][0]
            frames = (top[b"mdat"][1] - offset) // 4
            assert data[offset : top[b"mdat"][1]] == data[offset : offset + 4] * frames
        assert len(covers) == int(entry.has_cover)
        for cover in covers:
            image = Image.open(io.BytesIO(cover))
            image.load()
            assert image.size == (480, 480)


def test_audio_paths_and_shape(tmp_path: Path) -> None:
    result = generate_library(tmp_path / "a", books=200, audio=96, seed=2, placeholders=True)
    entries = list(result.entries())
    ebooks = {(e.title, e.authors, e.series) for e in entries if e.kind == "epub"}
    audio = [e for e in entries if e.kind != "epub"]
    books = {(e.title, e.authors, e.narrators) for e in audio}
    assert len(books) <= 96
    editions = {b for b in books if (b[0], b[1]) in {(t, a) for t, a, _ in ebooks}}
    assert 0.3 <= len(editions) / len(books) <= 0.7
    narrators = {n for e in audio for n in e.narrators}
    assert len(narrators) <= 12
    assert not narrators & {c.name for e in entries for c in e.creators}
    kinds = collections.Counter(e.kind for e in audio)
    assert kinds["mp3"] > 20 and kinds["m4b"] > 20
    for entry in audio:
        parts = entry.path.split("/")
        assert parts[0] == "audiobooks"
        assert parts[1] == sanitize_name(entry.authors[0])
        assert len(parts) == (5 if entry.series else 4)
        title = sanitize_name(entry.title)
        if entry.kind == "m4b":
            assert parts[-1] == f"{title}.m4b" and entry.track is None
        else:
            assert entry.track is not None
            part, total = map(int, entry.track.split("/"))
            assert 1 <= part <= total <= 3
            label = f" - Part {part:02d}" if total > 1 else ""
            assert parts[-1] == f"{title}{label}.mp3"
    mtimes = [e.mtime for e in entries]
    assert mtimes == list(range(MTIME_EPOCH, MTIME_EPOCH + len(entries)))


def test_adding_audio_keeps_the_ebooks(tmp_path: Path) -> None:
    plain = generate_library(tmp_path / "p", books=40, seed=9, placeholders=True)
    mixed = generate_library(tmp_path / "m", books=40, audio=10, seed=9, placeholders=True)
    ebooks = [e for e in mixed.entries() if e.kind == "epub"]
    assert ebooks == list(plain.entries())


def test_placeholders_have_the_same_paths_and_metadata(
    small: LibraryManifest, small_entries: list[ManifestEntry], tmp_path: Path
) -> None:
    empty = generate_library(tmp_path / "ph", placeholders=True, **SMALL)
    entries = list(empty.entries())
    assert [e.path for e in entries] == [e.path for e in small_entries]
    for real, placeholder in zip(small_entries, entries, strict=True):
        assert placeholder.bytes == 0
        assert (empty.root / placeholder.path).stat().st_size == 0
        assert placeholder == replace(real, bytes=0)  # same metadata
    assert empty.total_bytes == 0


def test_flat_layout(tmp_path: Path) -> None:
    flat = generate_library(
        tmp_path / "flat", books=40, audio=12, seed=3, layout="flat", placeholders=True
    )
    entries = list(flat.entries())
    for entry in entries:
        folder, name = entry.path.split("/")
        stem = f"{sanitize_name(entry.title)} - {sanitize_name(entry.creators[0].name)}"
        if entry.kind == "epub":
            assert folder == "ebooks"
        else:
            assert folder == "audiobooks"
            assert entry.track is None or name.endswith(".mp3")
            if entry.track and not entry.track.endswith("/1"):
                stem += f" - Part {int(entry.track.split('/')[0]):02d}"
        suffix = f".{entry.kind}"
        assert name in {stem + suffix} | {f"{stem} ({n}){suffix}" for n in range(2, 5)}
    for folder in ("ebooks", "audiobooks"):
        assert sorted(p.name for p in (flat.root / folder).iterdir()) == sorted(
            e.path.split("/")[1] for e in entries if e.path.startswith(folder + "/")
        )


def test_sanitize_name() -> None:
    assert sanitize_name("Who: What?") == "Who_ What_"
    assert sanitize_name('a/b\\c|d*e"f<g>') == "a_b_c_d_e_f_g_"
    assert sanitize_name("  Trailing dots... ") == "Trailing dots"
    assert sanitize_name("Zoë  Müller") == "Zoë Müller"
    assert sanitize_name("CON") == "CON_"
    assert sanitize_name("") == "_"
    assert len(sanitize_name("é" * 300).encode()) <= 120


def test_cache_reuses_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params: dict[str, Any] = {"books": 12, "seed": 5, "chapter_bytes": 1_000}
    first = generate_library_cached(tmp_path, **params)
    assert (first / library.COMPLETE_MARKER).is_file()
    snapshot = _snapshot(first)
    assert snapshot["."][0] == (MTIME_EPOCH + 11) * 1_000_000_000

    def fail(*_args: object, **_kwargs: object) -> LibraryManifest:
        raise AssertionError("the cached library should have been reused")

    monkeypatch.setattr(library, "generate_library", fail)
    assert generate_library_cached(tmp_path, jobs=2, **params) == first  # jobs is not in the key
    assert _snapshot(first) == snapshot
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temp folders left
    monkeypatch.undo()
    other = generate_library_cached(tmp_path, **{**params, "seed": 6})
    assert other != first


def test_cache_replaces_an_incomplete_folder(tmp_path: Path) -> None:
    params: dict[str, Any] = {"books": 5, "seed": 2, "placeholders": True}
    done = generate_library_cached(tmp_path, **params)
    (done / library.COMPLETE_MARKER).unlink()
    (done / "junk").write_text("x")
    again = generate_library_cached(tmp_path, **params)
    assert again == done and not (again / "junk").exists()
    assert (again / library.COMPLETE_MARKER).is_file()


def test_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    with pytest.raises(FileExistsError):
        generate_library(tmp_path, books=1)


def test_audio_needs_library_authors(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_library(tmp_path / "a", books=0, audio=1)


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    code = library.main(["--books", "8", "--out", str(out), "--seed", "4", "--layout", "flat"])
    assert code == 0
    assert "8 files" in capsys.readouterr().out
    assert len((out / MANIFEST_NAME).read_text("utf-8").splitlines()) == 8

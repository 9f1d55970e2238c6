"""Discovery skips junk: NAS snapshot and trash folders, desktop litter, hidden names.

The default names come from what the peers skip (Komga and Audiobookshelf skip
hidden folders; Kavita's scanner skips `@eaDir`, `__MACOSX`, `.DS_Store`, `._*`,
`@Recently-Snapshot`, `#recycle`, `.caltrash`) and from what NAS boxes and desktops
are known to write: Synology (`@eaDir`, `#recycle`, `#snapshot`, `@SynoResource`,
`@tmp`), QNAP (`@Recycle`, `@Recently-Snapshot`, `.@__thumb`), Windows
(`$RECYCLE.BIN`, `System Volume Information`), Linux desktops (`.Trash-1000`).
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from shelfscan.config import ConfigError, Settings
from shelfscan.jobs.queue import JobQueue
from shelfscan.scan.discovery import DEFAULT_RULES, IgnoreRules, walk_root
from shelfscan.watch import LibraryWatcher, WatchOptions

# (relative path of a book file, skipped by the default rules?)
JUNK_TABLE: list[tuple[str, bool]] = [
    # Synology
    ("@eaDir/Book.epub/SYNOINDEX_MEDIA_INFO.epub", True),
    ("Author/@eaDir/Book.epub", True),
    ("#recycle/Author/Book.epub", True),
    ("#snapshot/GMT+01_2024-01-01/Author/Book.epub", True),
    ("@SynoResource/Book.epub", True),
    ("@tmp/Book.epub", True),
    ("Comics/#recycle/Saga 001.cbz", True),
    # QNAP
    ("@Recycle/Book.epub", True),
    ("@recycle/Book.epub", True),
    ("@Recently-Snapshot/GMT+00_2024-05-01/Book.epub", True),
    ("@RECENTLY-SNAPSHOT/Book.epub", True),
    (".@__thumb/Book.epub", True),
    # macOS
    ("__MACOSX/Author/Book.epub", True),
    ("Author/__MACOSX/Book.epub", True),
    ("Author/._Book.epub", True),
    ("._Saga 001.cbz", True),
    (".DS_Store", True),
    (".AppleDouble/Book.epub", True),
    (".Trashes/501/Book.epub", True),
    # Windows
    ("$RECYCLE.BIN/S-1-5-21/Book.epub", True),
    ("$Recycle.Bin/Book.epub", True),
    ("System Volume Information/Book.epub", True),
    # Linux desktops and file systems
    (".Trash-1000/files/Book.epub", True),
    (".Trash/Book.epub", True),
    ("lost+found/#1234.epub", True),
    # calibre
    (".caltrash/b/Book.epub", True),
    ("Calibre Library/.caltrash/Author/Book.epub", True),
    (".calnotes/Book.epub", True),
    # any other dot-name
    (".hidden/Book.epub", True),
    ("Author/.git/Book.epub", True),
    (".Book.epub", True),
    ("Author/Series/.sync/Book 1.m4b", True),
    # real books, including names that resemble junk
    ("Book.epub", False),
    ("Author/Book.epub", False),
    ("Author/Series/Book 1/01.mp3", False),
    ("Recycle/Book.epub", False),
    ("recycle bin stories/Book.epub", False),
    ("Snapshot/Book.epub", False),
    ("eaDir/Book.epub", False),
    ("MACOSX/Book.epub", False),
    ("_MACOSX/Book.epub", False),
    ("Trash/Book.epub", False),
    ("Trash Talk.epub", False),
    ("Author/Book._epub.epub", False),
    ("Author/Mr. Smith.epub", False),
    ("@Author/Book.epub", False),
    ("#1 Bestseller/Book.epub", False),
    ("$money/Book.epub", False),
    ("Comics/Saga/Saga #001.cbz", False),
    ("Audiobooks/A & B/Title {Narrator}/Title.m4b", False),
    ("System/Book.epub", False),
    ("lost/Book.epub", False),
    ("Author/Book...epub", False),
    ("...And Justice for All.epub", True),  # a leading dot is hidden on every desktop
]


@pytest.mark.parametrize(("path", "skipped"), JUNK_TABLE)
def test_default_junk_rules(path: str, skipped: bool) -> None:
    assert DEFAULT_RULES.skips_path(path) is skipped


def test_the_junk_table_is_big_enough() -> None:
    assert len(JUNK_TABLE) >= 50


@pytest.mark.parametrize(
    ("patterns", "name", "skipped"),
    [
        (("default", "*.bak"), "Book.bak", True),
        (("default", "*.bak"), "@eaDir", True),
        (("default", "Old Stuff"), "old stuff", True),
        (("Old Stuff",), "@eaDir", False),  # no "default": only what is listed
        (("Old Stuff",), ".hidden", False),
        (("[ab]*",), "archive", True),
        (("[ab]*",), "comics", False),
        (("Vol.?",), "vol.1", True),
        (("Vol.?",), "vol.10", False),
    ],
)
def test_rules_from_patterns(patterns: tuple[str, ...], name: str, skipped: bool) -> None:
    assert IgnoreRules.from_patterns(patterns).skips(name) is skipped


def test_setting_shelfscan_ignore() -> None:
    assert Settings.from_env({}).ignore == ("default",)
    assert Settings.from_env({"SHELFSCAN_IGNORE": " default, *.bak ,,Old"}).ignore == (
        "default",
        "*.bak",
        "Old",
    )
    with pytest.raises(ConfigError, match="SHELFSCAN_IGNORE"):
        Settings.from_env({"SHELFSCAN_IGNORE": "Author/@eaDir"})


def _touch(root: Path, rel: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")


def test_walk_skips_junk_and_finds_the_rest(tmp_path: Path) -> None:
    for rel, _ in JUNK_TABLE:
        if rel.rsplit(".", 1)[-1] in ("epub", "cbz", "m4b", "mp3"):
            _touch(tmp_path, rel)
    _touch(tmp_path, "Author/@eaDir/cover.jpg")
    _touch(tmp_path, "Author/cover.jpg")
    walk = walk_root(1, str(tmp_path))
    found = sorted(f.path for f in walk.files)
    expected = sorted(
        rel
        for rel, skipped in JUNK_TABLE
        if not skipped and rel.rsplit(".", 1)[-1] in ("epub", "cbz", "m4b", "mp3")
    )
    assert found == expected
    assert [s.path for s in walk.sidecars] == ["Author/cover.jpg"]


def test_walk_with_custom_rules_reaches_a_hidden_folder(tmp_path: Path) -> None:
    _touch(tmp_path, ".kobo/Book.epub")
    _touch(tmp_path, "@eaDir/Book.epub")
    _touch(tmp_path, "Drafts/Book.epub")
    rules = IgnoreRules.from_patterns(["@eaDir", "drafts"])
    assert [f.path for f in walk_root(1, str(tmp_path), ignore=rules).files] == [".kobo/Book.epub"]


def test_targeted_walk_below_a_junk_folder_finds_nothing(tmp_path: Path) -> None:
    _touch(tmp_path, "Author/@eaDir/Book.epub/SYNOINDEX.epub")
    _touch(tmp_path, "Author/Book.epub")
    assert list(walk_root(1, str(tmp_path), "Author/@eaDir").files) == []
    assert [f.path for f in walk_root(1, str(tmp_path), "Author").files] == ["Author/Book.epub"]


def test_a_junk_root_name_is_not_held_against_the_root(tmp_path: Path) -> None:
    """Rules apply below the root: a library kept in `~/.books` is still walked."""
    root = tmp_path / ".books"
    _touch(root, "Book.epub")
    assert [f.path for f in walk_root(1, str(root)).files] == ["Book.epub"]


async def test_the_watcher_starts_no_scan_for_changes_in_junk(pool: asyncpg.Pool) -> None:
    """Synology's indexer writes `@eaDir/` thumbnails all day: those changes start no job."""
    watcher = LibraryWatcher(pool, JobQueue(pool, "watcher", 10), WatchOptions())
    roots = {"/lib": (1, 1)}
    await watcher._enqueue(
        roots,
        ["/lib/Author/@eaDir/Book.epub/SYNOFILE_THUMB_M.jpg", "/lib/#recycle/Old.epub", "/lib/._x"],
    )
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.jobs") == 0
    await watcher._enqueue(roots, ["/lib/Author/Book.epub", "/lib/Author/@eaDir/x.epub"])
    payload = await pool.fetchval("SELECT payload FROM shelfscan.jobs")
    assert payload["paths"] == ["Author/Book.epub"]


def test_a_walk_shares_the_catalogues_path_strings(tmp_path: Path) -> None:
    """On a rescan a file's path is held once: the walk takes the catalogue's string."""
    from shelfscan.catalogue.known import KnownFile, KnownFiles

    (tmp_path / "Author").mkdir()
    (tmp_path / "Author" / "Book.epub").write_bytes(b"x")
    (tmp_path / "New.epub").write_bytes(b"y")
    st = (tmp_path / "Author" / "Book.epub").stat()
    path = "".join(["Author/", "Book.epub"])  # a string object of its own, as a row gives
    known = KnownFiles.of([KnownFile(1, 1, 1, path, st.st_size, st.st_mtime_ns, st.st_ino, "ok")])
    files = {f.path: f for f in walk_root(1, str(tmp_path), known=known).files}
    assert sorted(files) == ["Author/Book.epub", "New.epub"]
    assert files["Author/Book.epub"].path is path
    assert files["Author/Book.epub"].mtime_ns == st.st_mtime_ns


def test_linked_folders_are_walked_once_and_never_in_a_loop(tmp_path: Path) -> None:
    """A link back up (a loop), a link to a folder inside the root and a second link to the same
    outside folder are skipped; the first link to an outside folder is followed."""
    root, outside = tmp_path / "lib", tmp_path / "elsewhere"
    (root / "Author").mkdir(parents=True)
    (root / "Author" / "Book.epub").write_bytes(b"x")
    outside.mkdir()
    (outside / "Far.epub").write_bytes(b"y")
    (root / "Author" / "loop").symlink_to(root)
    (root / "again").symlink_to(root / "Author")
    (root / "far").symlink_to(outside)
    (root / "zz-far-too").symlink_to(outside)
    (root / "up").symlink_to(tmp_path)  # holds the root: walking it would list the root again
    paths = sorted(f.path for f in walk_root(1, str(root)).files)
    assert paths in (
        ["Author/Book.epub", "far/Far.epub"],
        ["Author/Book.epub", "zz-far-too/Far.epub"],
    )


def test_a_walks_compact_file_list_gives_back_every_file_as_it_was_stored() -> None:
    from shelfscan.scan.discovery import DiskFile, DiskFiles

    files = [
        DiskFile(1, "a/x.epub", 0, -5, 2**64 - 1, 2**40, "epub"),  # an inode past 2**63
        DiskFile(2, "caf\udce9.cbz", 7, 10**18, 3, 4, "cbz"),  # a non-UTF-8 name
        DiskFile(1, "b/y.mp3", 9, 6, 8, 2**40, "mp3"),
    ]
    stored = DiskFiles(files[:1])
    stored += files[1:2]
    stored.append(files[2])
    assert list(stored) == files and len(stored) == 3 and stored
    assert (stored[-1], stored[1:]) == (files[2], files[1:])
    assert not DiskFiles()

"""A library holding a file whose name is Latin-1, not UTF-8 (old Samba shares are full of them)."""

from __future__ import annotations

import os
from pathlib import Path

from shelfscan.testing.epubs import CreatorSpec, EpubSpec, write_epub
from tests.faults.harness import (
    add_library,
    assert_catalogue_sound,
    enqueue_scan,
    fleet,
    jobs_settled,
    query,
    summary_of,
    until,
)
from tests.faults.pgcluster import Cluster
from tests.libraries import small_library

LATIN1_NAME = b"latin1-\xe9t\xe9.epub"
BOOKS = 14


def _latin1_library(root: Path) -> Path:
    small_library(root, 12, folders=2)
    odd = Path(os.fsdecode(os.fsencode(root / "shelf00") + b"/" + LATIN1_NAME))
    write_epub(odd, EpubSpec(title="", creators=(CreatorSpec("Writer 0"),), subjects=("Genre 0",)))
    # Untagged, in a Latin-1 author folder: the author's name comes from the path.
    folder = Path(os.fsdecode(os.fsencode(root) + b"/Auteur Fran\xe7ais"))
    write_epub(folder / "Livre.epub", EpubSpec(title="Livre", creators=(), subjects=("Genre 1",)))
    return odd


async def test_a_latin1_file_name_scans_with_the_cli_and_the_daemon(
    cluster: Cluster, fault_db: str, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _latin1_library(root)
    async with fleet(fault_db, tmp_path) as crew:
        first = crew.cli("cli", "scan", str(root), "--library", "lat", "--json")
        assert await first.finish(120) == 0, first.stderr[-3000:]
        assert summary_of(first.stdout)["books_added"] == BOOKS
        raw = await query(
            fault_db,
            "SELECT array_agg(path_raw ORDER BY path) FROM shelfscan.files WHERE path_raw IS NOT NULL",
        )
        assert [bytes(r) for r in raw] == [
            b"Auteur Fran\xe7ais/Livre.epub",
            b"shelf00/" + LATIN1_NAME,
        ]
        # Untitled, the book is named after its file; untagged, its author after the folder
        # (path hints drop the bytes they cannot read as text).
        title = "SELECT count(*) FROM shelfscan.books WHERE title LIKE 'latin1-%'"
        assert await query(fault_db, title) == 1
        author = "SELECT count(*) FROM shelfscan.persons WHERE name LIKE 'Auteur Fran%'"
        assert await query(fault_db, author) == 1
        again = crew.cli("cli", "scan", str(root), "--library", "lat", "--json")
        assert await again.finish(120) == 0, again.stderr[-3000:]
        assert summary_of(again.stdout)["books_unchanged"] == BOOKS

        # The daemon reads it too: a fresh library on the same folder, scanned by a job.
        library_id = await add_library(fault_db, "lat-daemon", root)
        crew.serve("d1")
        job_id = await enqueue_scan(fault_db, library_id)
        await until(lambda: jobs_settled(fault_db), 120, "the daemon's scan ended")
        state = await query(fault_db, "SELECT state FROM shelfscan.jobs WHERE id = $1", job_id)
        assert state == "succeeded"
        await assert_catalogue_sound(fault_db, library_id, BOOKS)
    lat_id = await query(fault_db, "SELECT id FROM shelfscan.libraries WHERE name = 'lat'")
    await assert_catalogue_sound(fault_db, lat_id, BOOKS)

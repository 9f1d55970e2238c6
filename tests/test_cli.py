"""The command line as a user runs it, in a subprocess, against a real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def _run(args: list[str], db_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": db_url, "SHELFSCAN_DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "shelfscan", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_scan_of_the_real_epubs_twice_then_export(
    db_url: str, tmp_path: Path, corpus_dir: Path, corpus_truth: dict[str, dict[str, Any]]
) -> None:
    folder = corpus_dir / "epub"
    expected = {k: v for k, v in corpus_truth.items() if k.startswith("epub/")}
    first = _run(["scan", str(folder), "--json"], db_url, tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["books_added"] == len(expected) == len(list(folder.glob("*.epub")))
    assert summary["files_failed"] == 0

    second = _run(["scan", str(folder), "--json"], db_url, tmp_path)
    assert second.returncode == 0, second.stderr
    again = json.loads(second.stdout)
    assert (again["books_added"], again["books_unchanged"]) == (0, len(expected))

    exported = _run(["export"], db_url, tmp_path)
    assert exported.returncode == 0, exported.stderr
    books = [json.loads(line) for line in exported.stdout.splitlines()]
    by_path = {"epub/" + b["files"][0]["path"]: b for b in books}
    assert set(by_path) == set(expected)
    for path, truth in expected.items():
        book = by_path[path]
        assert book["title"] == truth["title"], path
        authors = [a["name"] for a in book["authors"] if a["role"] == "author"]
        assert authors == truth.get("authors", []), path
        assert book["files"][0]["language"] == truth["language"], path
        assert (book["files"][0]["cover"] is not None) == truth["has_cover"], path
    # stderr carries structured JSON log lines when not on a terminal
    events = [
        json.loads(line)["event"] for line in first.stderr.splitlines() if line.startswith("{")
    ]
    assert "scan_finished" in events


def test_scan_of_a_missing_folder_fails_with_one_line(db_url: str, tmp_path: Path) -> None:
    result = _run(["scan", str(tmp_path / "nope"), "--json"], db_url, tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("shelfscan: cannot scan")


def test_unreachable_database_fails_with_one_line_and_no_password(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    url = "postgresql://shelf:s3cret@127.0.0.1:1/none"
    result = _run(["scan", str(tmp_path / "lib")], url, tmp_path)
    assert result.returncode == 1
    assert "s3cret" not in result.stderr
    assert "cannot connect" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("value", ["zero", "0"])
def test_bad_settings_are_rejected_clearly(db_url: str, tmp_path: Path, value: str) -> None:
    env = {**os.environ, "DATABASE_URL": db_url, "SHELFSCAN_WORKERS": value}
    result = subprocess.run(
        [sys.executable, "-m", "shelfscan", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "SHELFSCAN_WORKERS" in result.stderr


def test_library_and_jobs_commands(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "books").mkdir()
    assert (
        _run(["library", "add", "Main", str(tmp_path / "books")], db_url, tmp_path).returncode == 0
    )
    listed = _run(["library", "list", "--json"], db_url, tmp_path)
    (lib,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (lib["name"], lib["paths"], lib["books"]) == ("Main", [str(tmp_path / "books")], 0)

    first = _run(["jobs", "enqueue", "scan", "--library", "Main"], db_url, tmp_path)
    assert first.returncode == 0 and first.stdout.startswith("queued job")
    again = _run(["jobs", "enqueue", "scan", "--library", "Main"], db_url, tmp_path)
    assert "already queued" in again.stdout
    jobs = [
        json.loads(line)
        for line in _run(["jobs", "list", "--json"], db_url, tmp_path).stdout.splitlines()
    ]
    assert [(j["kind"], j["state"], j["library"]) for j in jobs] == [
        ("scan_library", "queued", "Main")
    ]
    job_id = jobs[0]["id"]
    assert _run(["jobs", "cancel", str(job_id)], db_url, tmp_path).returncode == 0
    shown = json.loads(_run(["jobs", "show", str(job_id)], db_url, tmp_path).stdout)
    assert shown["state"] == "cancelled"
    assert _run(["jobs", "retry", str(job_id)], db_url, tmp_path).returncode == 0
    assert (
        json.loads(_run(["jobs", "show", str(job_id)], db_url, tmp_path).stdout)["state"]
        == "queued"
    )
    # Retrying a queued job just makes it due now; an unknown job is a one-line error.
    assert _run(["jobs", "retry", str(job_id)], db_url, tmp_path).returncode == 0
    bad = _run(["jobs", "retry", "999"], db_url, tmp_path)
    assert (
        bad.returncode == 1
        and bad.stderr == "shelfscan: job 999 is unknown or succeeded; queue a new scan instead\n"
    )

    assert _run(["library", "remove", "Main"], db_url, tmp_path).returncode == 0
    assert _run(["library", "list", "--json"], db_url, tmp_path).stdout == ""
    assert _run(["library", "remove", "Main"], db_url, tmp_path).returncode == 1


def test_scan_refuses_while_a_daemon_scans_the_same_library(db_url: str, tmp_path: Path) -> None:
    import asyncio

    import asyncpg

    (tmp_path / "books").mkdir()
    assert (
        _run(["library", "add", "Busy", str(tmp_path / "books")], db_url, tmp_path).returncode == 0
    )

    async def occupy() -> int:
        conn = await asyncpg.connect(db_url)
        try:
            job_id: int = await conn.fetchval(
                "INSERT INTO shelfscan.jobs (kind, payload, state, owner, lease_expires_at) "
                "SELECT 'scan_library', jsonb_build_object('library_id', id), 'running', "
                "'other-daemon', now() + interval '1 hour' "
                "FROM shelfscan.libraries WHERE name = 'Busy' RETURNING id"
            )
            return job_id
        finally:
            await conn.close()

    job_id = asyncio.run(occupy())
    result = _run(["scan", str(tmp_path / "books"), "--library", "Busy"], db_url, tmp_path)
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(
        f"shelfscan: a scan of this library is already running (job {job_id} by other-daemon; "
        "if that process is gone, its lease runs out in 3"
    ), line
    assert line.endswith(" s and a rerun then takes over)"), line


def test_jobs_logs_prints_a_scans_events(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "books").mkdir()
    (tmp_path / "books" / "broken.epub").write_text("not a zip")
    os.utime(tmp_path / "books" / "broken.epub", ns=(1, 1_600_000_000_000_000_000))  # settled
    scanned = _run(["scan", str(tmp_path / "books"), "--json"], db_url, tmp_path)
    assert scanned.returncode == 0, scanned.stderr
    (job,) = [
        json.loads(line)
        for line in _run(["jobs", "list", "--json"], db_url, tmp_path).stdout.splitlines()
    ]
    assert job["state"] == "succeeded"
    for follow in ([], ["--follow"]):  # a finished job: --follow prints what there is and ends
        logs = _run(["jobs", "logs", str(job["id"]), *follow], db_url, tmp_path)
        events = [json.loads(line) for line in logs.stdout.splitlines()]
        unreadable = [e for e in events if e["event"] == "file_unreadable"]
        assert [(e["level"], e["path"]) for e in unreadable] == [("warning", "broken.epub")]
        assert "scan_planned" in [e["event"] for e in events]


def test_cover_writes_the_image_back_out_of_its_pack(db_url: str, tmp_path: Path) -> None:
    import hashlib

    from shelfscan.testing.covers import cover_jpeg
    from shelfscan.testing.epubs import CreatorSpec, EpubSpec, write_epub

    image = cover_jpeg(3, (40, 60), 2_000)
    book = tmp_path / "books" / "b.epub"
    write_epub(book, EpubSpec(title="With Cover", creators=(CreatorSpec("A"),), cover=image))
    os.utime(book, ns=(1, 1_600_000_000_000_000_000))
    assert _run(["scan", str(tmp_path / "books")], db_url, tmp_path).returncode == 0
    (doc,) = [json.loads(line) for line in _run(["export"], db_url, tmp_path).stdout.splitlines()]
    sha = doc["cover"]["sha256"]
    assert sha == hashlib.sha256(image).hexdigest()
    out = tmp_path / "cover.jpg"
    assert _run(["cover", sha, "-o", str(out)], db_url, tmp_path).returncode == 0
    assert out.read_bytes() == image
    missing = _run(["cover", "0" * 64], db_url, tmp_path)
    assert missing.returncode == 1 and "no cover" in missing.stderr

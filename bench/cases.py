"""The cases of a run: what is measured on which library, and the reversible 1% change."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import BenchError

# --- changing 1% of a library, reversibly ---------------------------------------------------------


@dataclass(slots=True)
class ChangeSet:
    """EPUBs retitled in place for one rescan, then restored byte for byte.

    In place (same inode) so that the cached library and the snapshot database stay in
    step; a journal of backups under the cache folder repairs the library if a run dies
    before restoring it."""

    backup: Path
    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def apply(cls, root: Path, paths: Sequence[Path], backup: Path) -> ChangeSet:
        restore_pending(backup)
        backup.mkdir(parents=True, exist_ok=True)
        changes = cls(backup)
        for i, path in enumerate(paths):
            st = path.stat()
            original = path.read_bytes()
            saved = backup / f"{i}.bin"
            saved.write_bytes(original)
            changes.entries.append(
                {
                    "path": str(path),
                    "backup": str(saved),
                    "atime_ns": st.st_atime_ns,
                    "mtime_ns": st.st_mtime_ns,
                }
            )
        (backup / "journal.json").write_text(json.dumps(changes.entries), encoding="utf-8")
        for entry in changes.entries:
            path = Path(entry["path"])
            _overwrite(path, retitled(path.read_bytes()))
            os.utime(path, ns=(entry["atime_ns"], entry["mtime_ns"] + 1_000_000_000))
        return changes

    def restore(self) -> None:
        restore_pending(self.backup)


def restore_pending(backup: Path) -> None:
    """Put back every file a journal names (after a crash too), then drop the journal."""
    journal = backup / "journal.json"
    if journal.is_file():
        for entry in json.loads(journal.read_text(encoding="utf-8")):
            path = Path(entry["path"])
            _overwrite(path, Path(entry["backup"]).read_bytes())
            os.utime(path, ns=(entry["atime_ns"], entry["mtime_ns"]))
    if backup.exists():
        shutil.rmtree(backup)


def _overwrite(path: Path, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate()


def retitled(epub: bytes) -> bytes:
    """The same EPUB with " (revised)" appended to its dc:title: a real metadata change."""
    source = zipfile.ZipFile(io.BytesIO(epub))
    container = source.read("META-INF/container.xml")
    match = re.search(rb'full-path="([^"]+)"', container)
    if match is None:
        raise BenchError("generated EPUB without an OPF path")
    opf = match.group(1).decode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == opf:
                body = re.sub(
                    rb"(<dc:title[^>]*>)(.*?)(</dc:title>)", rb"\1\2 (revised)\3", body, count=1
                )
            target.writestr(info, body, compress_type=info.compress_type)
    return out.getvalue()


def pick_changed(library: Path, fraction: float) -> list[Path]:
    """Every k-th EPUB of the manifest (deterministic), at least one."""
    from shelfscan.testing.library import load_manifest

    epubs = [e.path for e in load_manifest(library / "manifest.jsonl") if e.kind == "epub"]
    count = max(1, round(len(epubs) * fraction))
    step = max(1, len(epubs) // count)
    return [library / p for p in epubs[::step][:count]]


# --- the run -------------------------------------------------------------------------------------


REFERENCE_KINDS = ("reference", "reference_full", "reference_rescan")


@dataclass(frozen=True, slots=True)
class Case:
    """One measured variant at one library size."""

    variant: str
    size: int
    library: Path  # the generated library folder
    scan_root: Path  # the folder scanned (its ebooks/ or audiobooks/)
    kind: str  # naive | scan | plan | reference | reference_full | reference_rescan
    unit: str  # books | files
    fresh: bool = True  # an empty migrated database; False: a clone of the first-scan snapshot
    workers: int | None = None
    change: float = 0.0
    tree: str = "EPUBs"  # what the scanned folder holds: EPUBs | audio files | placeholders
    cold: bool = False  # page cache, dentries and inodes dropped just before the case
    rounds: int | None = None  # run in the first `rounds` rounds only (the big, slow cases)

    @property
    def key(self) -> str:
        return case_key(self.variant, self.size, tree=self.tree, cold=self.cold)

    @property
    def family(self) -> str:
        """Whose first scan a rescan of this case starts from."""
        return "reference" if self.kind in REFERENCE_KINDS else "shelfscan"


def case_key(variant: str, size: int, *, tree: str = "EPUBs", cold: bool = False) -> str:
    """A case's name in the results: a placeholder tree of the same size as an EPUB library
    is another case (the 2026-12-07 full run pooled `reference@10000` of both)."""
    return (
        f"{variant}@{size}"
        + ("-placeholders" if tree == "placeholders" else "")
        + ("-cold" if cold else "")
    )


def plan_cases(
    libraries: dict[int, Path],
    audio: Path | None,
    big: list[tuple[int, Path]],
    change: float,
    *,
    epub_big: tuple[int, Path] | None = None,
    cold: bool = False,
    big_rounds: int = 1,
) -> list[Case]:
    """Every case of a round, in the base order that rounds rotate.

    The reference pipeline (bench/reference.py) runs beside every EPUB library and
    placeholder tree, so each shelfscan case has a reference figure from the same run."""
    cases: list[Case] = []
    largest = max(libraries) if libraries else None
    for size, lib in sorted(libraries.items()):
        root = lib / "ebooks"
        cases += [
            Case("naive", size, lib, root, "naive", "books"),
            Case("w1", size, lib, root, "scan", "books", workers=1),
            Case("default", size, lib, root, "scan", "books"),
            Case("nochange", size, lib, root, "scan", "files", fresh=False),
            Case("changed1", size, lib, root, "scan", "files", fresh=False, change=change),
            Case("reference", size, lib, root, "reference", "books"),
            Case("reference_full", size, lib, root, "reference_full", "books"),
            Case("reference_rescan", size, lib, root, "reference_rescan", "files", fresh=False),
        ]
        if cold and size == largest:
            cases += [
                Case("default", size, lib, root, "scan", "books", cold=True),
                Case("nochange", size, lib, root, "scan", "files", fresh=False, cold=True),
                Case("reference", size, lib, root, "reference", "books", cold=True),
                Case(
                    "reference_rescan", size, lib, root, "reference_rescan", "files",
                    fresh=False, cold=True,
                ),
            ]  # fmt: skip
    if epub_big is not None:
        size, lib = epub_big
        root = lib / "ebooks"
        once: dict[str, Any] = {"rounds": big_rounds}
        cases += [
            Case("default", size, lib, root, "scan", "books", **once),
            Case("nochange", size, lib, root, "scan", "files", fresh=False, **once),
            Case("reference", size, lib, root, "reference", "books", **once),
            Case(
                "reference_rescan", size, lib, root, "reference_rescan", "files",
                fresh=False, **once,
            ),
        ]  # fmt: skip
    if audio is not None:
        files = sum(1 for _ in _audio_files(audio / "audiobooks"))
        cases.append(
            Case("audio", files, audio, audio / "audiobooks", "scan", "files", tree="audio files")
        )
    # Cold placeholder cases on the largest tree of at most 100,000 files: at 1M they took
    # ~15 min of a run (every inode read from disk) and say nothing the 100k tree does not.
    cold_tree = max((size for size, _ in big if size <= 100_000), default=None)
    for size, lib in sorted(big):
        root = lib / "ebooks"
        limit = big_rounds if size > 100_000 else None
        kw: dict[str, Any] = {"tree": "placeholders", "rounds": limit}
        cases += [
            Case("discover", size, lib, root, "plan", "files", **kw),
            Case("placeholders", size, lib, root, "scan", "files", **kw),
            Case("nochange", size, lib, root, "scan", "files", fresh=False, **kw),
            Case("reference", size, lib, root, "reference", "files", **kw),
            Case(
                "reference_rescan", size, lib, root, "reference_rescan", "files", fresh=False, **kw
            ),
        ]
        if cold and size == cold_tree:
            cases += [
                Case("placeholders", size, lib, root, "scan", "files", cold=True, **kw),
                Case("nochange", size, lib, root, "scan", "files", fresh=False, cold=True, **kw),
                Case("reference", size, lib, root, "reference", "files", cold=True, **kw),
                Case(
                    "reference_rescan", size, lib, root, "reference_rescan", "files",
                    fresh=False, cold=True, **kw,
                ),
            ]  # fmt: skip
    return cases


def describe_library(library: Path) -> dict[str, Any]:
    """What the generator's manifest says the library holds (the ground truth for checks)."""
    from shelfscan.testing.library import load_manifest

    epubs = [e for e in load_manifest(library / "manifest.jsonl") if e.kind == "epub"]
    return {
        "path": str(library),
        "epubs": len(epubs),
        "epubs_with_cover": sum(1 for e in epubs if e.has_cover),
        "bytes": sum(e.bytes for e in epubs),
    }


def _audio_files(root: Path) -> Iterator[Path]:
    for folder, _, files in os.walk(root):
        for name in files:
            if name.lower().endswith((".mp3", ".m4b", ".m4a")):
                yield Path(folder) / name

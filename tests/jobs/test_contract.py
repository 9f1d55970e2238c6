"""The payload contract, table-driven: what decodes to what, and which field a refusal names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shelfscan.catalogue.libraries import Library, Root
from shelfscan.jobs.contract import (
    JobStatus,
    Payload,
    PayloadError,
    ScanFiles,
    ScanFolders,
    ScanLibrary,
    check_library,
    decode,
)

GOOD: list[tuple[str, Any, Payload]] = [
    ("scan_library", {"library_id": 3}, ScanLibrary(3)),
    ("scan_path", {"library_id": 3, "root_id": 4, "paths": [""]}, ScanFolders(3, 4, ("",))),
    (
        "scan_path",
        {"library_id": 3, "root_id": 4, "paths": ["a/./b/", "c"]},
        ScanFolders(3, 4, ("a/b", "c")),
    ),
    (
        "scan_path",
        {"library_id": 3, "root_id": 4, "files": ["x.epub"], "sidecars": ["metadata.opf"]},
        ScanFiles(3, 4, ("x.epub",), ("metadata.opf",)),
    ),
    # The bytes-exact form of a Latin-1 name (catalogue.pathcodec.to_json).
    (
        "scan_path",
        {"library_id": 3, "root_id": 4, "files": [{"raw": "bGF0aW4xLel06S5lcHVi"}]},
        ScanFiles(3, 4, (b"latin1-\xe9t\xe9.epub".decode("utf-8", "surrogateescape"),)),
    ),
    (
        "scan_path",
        {"library_id": 3, "root_id": 4, "files": ["a..b.epub"]},
        ScanFiles(3, 4, ("a..b.epub",)),
    ),
]

BAD: list[tuple[str, Any, str]] = [
    (
        "scan_path",
        {"library_id": 1, "root_id": 1, "paths": [1, None]},
        "bad payload: paths[0]: must be a path, not 1",
    ),
    (
        "scan_path",
        {"library_id": 1, "root_id": 1, "paths": ["ok", None]},
        "bad payload: paths[1]: must be a path, not null",
    ),
    (
        "scan_path",
        {"library_id": 1, "root_id": 1, "files": ["../other-lib/x.epub"]},
        "bad payload: files[0]: '../other-lib/x.epub' is outside the library folder",
    ),
    (
        "scan_path",
        {"library_id": 1, "root_id": 1, "files": ["/etc/passwd"]},
        "bad payload: files[0]: '/etc/passwd' is absolute; paths are relative to the root",
    ),
    (
        "scan_path",
        {"library_id": 1, "root_id": 1, "files": ["a\x00b"]},
        "bad payload: files[0]: contains a NUL byte",
    ),
    (
        "scan_path",
        {"library_id": 1, "root_id": 1, "files": [""]},
        "bad payload: files[0]: names no file",
    ),
    (
        "scan_path",
        {"library_id": 1, "root_id": 1, "files": []},
        "bad payload: files: must name at least one file",
    ),
    (
        "scan_path",
        {"library_id": 1, "root_id": 1, "files": "x.epub"},
        "bad payload: files: must be a list of paths, not a string",
    ),
    (
        "scan_path",
        {"library_id": 1, "root_id": 1},
        "bad payload: paths: a scan_path job needs either 'paths' or 'files'",
    ),
    ("scan_path", {"library_id": 1, "paths": []}, "bad payload: root_id: missing"),
    ("scan_library", {}, "bad payload: library_id: missing"),
    (
        "scan_library",
        {"library_id": None},
        "bad payload: library_id: must be a positive integer, not null",
    ),
    (
        "scan_library",
        {"library_id": "7"},
        "bad payload: library_id: must be a positive integer, not '7'",
    ),
    (
        "scan_library",
        {"library_id": True},
        "bad payload: library_id: must be a positive integer, not True",
    ),
    (
        "scan_library",
        {"library_id": 0},
        "bad payload: library_id: must be a positive integer, not 0",
    ),
    ("scan_library", [1], "bad payload: payload: must be a JSON object, not a list"),
    ("rescan_everything", {}, "bad payload: kind: unknown job kind 'rescan_everything'"),
    (
        "scan_path",
        {"library_id": 1, "root_id": 1, "files": [{"raw": "%%%"}]},
        "bad payload: files[0]: raw is not valid base64",
    ),
]


@pytest.mark.parametrize(("kind", "payload", "expected"), GOOD)
def test_good_payloads_decode_and_round_trip(kind: str, payload: Any, expected: Payload) -> None:
    decoded = decode(kind, payload)
    assert decoded == expected
    assert decode(kind, decoded.to_json()) == decoded


@pytest.mark.parametrize(("kind", "payload", "message"), BAD)
def test_bad_payloads_name_the_field(kind: str, payload: Any, message: str) -> None:
    with pytest.raises(PayloadError) as info:
        decode(kind, payload)
    assert str(info.value) == message
    assert "\n" not in message


LIB = Library(3, "Books", (Root(4, Path("/lib/books")), Root(5, Path("/lib/more"))))


@pytest.mark.parametrize(
    ("payload", "library", "outcome"),
    [
        (ScanLibrary(3), LIB, None),
        (ScanFiles(3, 5, ("a.epub",)), LIB, Root(5, Path("/lib/more"))),
        (ScanLibrary(9), None, "bad payload: library_id: no library with id 9"),
        (
            ScanFolders(3, 6, ("",)),
            LIB,
            "bad payload: root_id: 6 is not a folder of library 'Books'",
        ),
    ],
)
def test_payloads_are_held_against_their_library(
    payload: Payload, library: Library | None, outcome: Root | str | None
) -> None:
    if isinstance(outcome, str):
        with pytest.raises(PayloadError, match=outcome):
            check_library(payload, library)
    else:
        assert check_library(payload, library) == outcome


def test_finished_states() -> None:
    assert {s for s in JobStatus if s.finished} == {"succeeded", "failed", "cancelled"}

"""The job contract: which kinds and states exist, and what each kind's payload may hold.

Payloads arrive as jsonb from anyone with INSERT on `shelfscan.jobs` (a book server, a
watcher, a split scan), so they are decoded here, once, into frozen records before any
handler sees them. A payload that cannot be decoded is a bad request, not a passing fault:
the job fails at once with a one-line reason naming the field, instead of being retried
until its attempts run out (or, worse, read as "the whole library" as `paths: [1, null]`
once was).

Decoding is pure (no database); `check_library` then holds the decoded payload against the
library it names, which the handler has loaded.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from shelfscan.catalogue.libraries import Library, Root
from shelfscan.catalogue.pathcodec import to_json
from shelfscan.errors import ShelfscanError
from shelfscan.pgtext import pg_text


class JobKind(StrEnum):
    SCAN_LIBRARY = "scan_library"
    SCAN_PATH = "scan_path"


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
UNFINISHED = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})


class JobFailed(ShelfscanError):
    """A failure that retrying cannot fix (the library was deleted, the payload is bad)."""


class PayloadError(JobFailed):
    """A payload that does not follow the contract; the message names the field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"bad payload: {field}: {reason}")
        self.field = field


@dataclass(frozen=True, slots=True)
class ScanLibrary:
    """Scan every folder of a library (what a book server asks for)."""

    library_id: int
    kind: ClassVar[JobKind] = JobKind.SCAN_LIBRARY

    def to_json(self) -> dict[str, Any]:
        return {"library_id": self.library_id}


@dataclass(frozen=True, slots=True)
class ScanFolders:
    """Scan some folders of one root (a watcher saw them change; deferred files settled).

    `paths` are relative to the root; "" is the root itself.
    """

    library_id: int
    root_id: int
    paths: tuple[str, ...]
    kind: ClassVar[JobKind] = JobKind.SCAN_PATH

    def to_json(self) -> dict[str, Any]:
        return {
            "library_id": self.library_id,
            "root_id": self.root_id,
            "paths": [to_json(p) for p in self.paths],
        }


@dataclass(frozen=True, slots=True)
class ScanFiles:
    """Read exactly these files and sidecars of one root (one part of a split scan)."""

    library_id: int
    root_id: int
    files: tuple[str, ...]
    sidecars: tuple[str, ...] = ()
    kind: ClassVar[JobKind] = JobKind.SCAN_PATH

    def to_json(self) -> dict[str, Any]:
        return {
            "library_id": self.library_id,
            "root_id": self.root_id,
            "files": [to_json(p) for p in self.files],
            "sidecars": [to_json(p) for p in self.sidecars],
        }


Payload = ScanLibrary | ScanFolders | ScanFiles


def decode(kind: str, payload: object) -> Payload:
    """The typed payload of a job row, or PayloadError naming the first bad field."""
    try:
        job_kind = JobKind(kind)
    except ValueError:
        raise PayloadError("kind", f"unknown job kind {kind!r}") from None
    if not isinstance(payload, Mapping):
        raise PayloadError("payload", f"must be a JSON object, not {_json_type(payload)}")
    library_id = _id(payload, "library_id")
    if job_kind is JobKind.SCAN_LIBRARY:
        return ScanLibrary(library_id)
    root_id = _id(payload, "root_id")
    has_paths, has_files = "paths" in payload, "files" in payload
    if has_paths == has_files:
        raise PayloadError("paths", "a scan_path job needs either 'paths' or 'files'")
    if has_paths:
        return ScanFolders(library_id, root_id, _paths(payload, "paths", allow_root=True))
    files = _paths(payload, "files", allow_root=False)
    if not files:
        raise PayloadError("files", "must name at least one file")
    sidecars = _paths(payload, "sidecars", allow_root=False) if "sidecars" in payload else ()
    return ScanFiles(library_id, root_id, files, sidecars)


def check_library(payload: Payload, library: Library | None) -> Root | None:
    """The root a targeted payload names, after checking the library and root exist.

    None for a whole-library scan. Relative paths that stay inside their root are
    already guaranteed by `decode`.
    """
    if library is None:
        raise PayloadError("library_id", f"no library with id {payload.library_id}")
    if isinstance(payload, ScanLibrary):
        return None
    root = next((r for r in library.roots if r.id == payload.root_id), None)
    if root is None:
        raise PayloadError(
            "root_id", f"{payload.root_id} is not a folder of library {library.name!r}"
        )
    return root


def _id(payload: Mapping[str, Any], name: str) -> int:
    if name not in payload:
        raise PayloadError(name, "missing")
    value = payload[name]
    # bool is an int in Python; `true` is not an id.
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PayloadError(name, f"must be a positive integer, not {_shown(value)}")
    return value


def _paths(payload: Mapping[str, Any], name: str, *, allow_root: bool) -> tuple[str, ...]:
    values = payload[name]
    if not isinstance(values, list):
        raise PayloadError(name, f"must be a list of paths, not {_json_type(values)}")
    return tuple(_relative(v, f"{name}[{i}]", allow_root=allow_root) for i, v in enumerate(values))


def _relative(value: object, where: str, *, allow_root: bool) -> str:
    """A path relative to its root that cannot leave it (no '..', not absolute, no NUL)."""
    if isinstance(value, Mapping) and set(value) == {"raw"} and isinstance(value["raw"], str):
        try:
            # The bytes-exact form of a name that is not UTF-8 (catalogue.pathcodec).
            path = base64.b64decode(value["raw"], validate=True).decode("utf-8", "surrogateescape")
        except (binascii.Error, ValueError):
            raise PayloadError(where, "raw is not valid base64") from None
    elif isinstance(value, str):
        path = value
    else:
        raise PayloadError(where, f"must be a path, not {_shown(value)}")
    if "\x00" in path:
        raise PayloadError(where, "contains a NUL byte")
    if path.startswith("/"):
        raise PayloadError(where, f"{_shown(path)} is absolute; paths are relative to the root")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PayloadError(where, f"{_shown(path)} is outside the library folder")
    if not parts and not allow_root:
        raise PayloadError(where, "names no file")
    return "/".join(parts)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, Mapping) else type(value).__name__


def _shown(value: object) -> str:
    text = "null" if value is None else repr(value)
    return pg_text(text if len(text) <= 80 else text[:77] + "...")

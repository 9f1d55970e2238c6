"""The one encoder for text that comes from a path or a tag and goes to PostgreSQL.

PostgreSQL `text` and `jsonb` reject NUL and invalid UTF-8; Python hands us
file names with lone surrogates (surrogateescape) and tags with NULs. Anything
that reaches the database from a file — a job-log line, an error, a metrics
label, a progress field — passes through `pg_text` (or `pg_json` for nested
values), so a hostile name costs a readable escape instead of a failed scan.
Exact bytes, where they matter, are kept elsewhere (`files.path_raw`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def pg_text(value: str) -> str:
    """`value` with NULs dropped and any byte that is not UTF-8 written as \\xNN."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "surrogateescape") if _escaped_only(value) else None
        if raw is not None:
            return raw.decode("utf-8", "backslashreplace")
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def pg_text_or_none(value: str | None) -> str | None:
    """`pg_text` for a nullable column."""
    return None if value is None else pg_text(value)


def _escaped_only(value: str) -> bool:
    # surrogateescape can only re-encode U+DC80..U+DCFF; other lone surrogates
    # (from a broken tag decoder) need backslashreplace on the str itself.
    return all(not (0xD800 <= ord(c) <= 0xDFFF) or 0xDC80 <= ord(c) <= 0xDCFF for c in value)


def pg_json(value: Any) -> Any:
    """`value` (dicts, lists, scalars) with every string, key included, through `pg_text`."""
    if isinstance(value, str):
        return pg_text(value)
    if isinstance(value, Mapping):
        return {pg_text(str(k)): pg_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [pg_json(v) for v in value]
    return value

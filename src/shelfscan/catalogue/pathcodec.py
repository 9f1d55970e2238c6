"""File names that are not valid UTF-8, stored losslessly.

Python gives such names as str with lone surrogates (surrogateescape), which
PostgreSQL text cannot hold. They are stored as a readable `path` (bad bytes
written as \\xNN) plus the exact bytes in `path_raw`, and turned back into the
very same str when read, so the file is found again on the next scan.
"""

from __future__ import annotations

import base64
from typing import Any

from shelfscan.pgtext import pg_text


def to_db(path: str) -> tuple[str, bytes | None]:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return pg_text(path), path.encode("utf-8", "surrogateescape")
    return path, None


def from_db(path: str, raw: bytes | None) -> str:
    return path if raw is None else bytes(raw).decode("utf-8", "surrogateescape")


def to_json(path: str) -> Any:
    """For job payloads (jsonb cannot hold lone surrogates either)."""
    text, raw = to_db(path)
    return text if raw is None else {"raw": base64.b64encode(raw).decode("ascii")}


def from_json(value: Any) -> str:
    if isinstance(value, dict) and isinstance(value.get("raw"), str):
        return base64.b64decode(value["raw"]).decode("utf-8", "surrogateescape")
    return str(value)

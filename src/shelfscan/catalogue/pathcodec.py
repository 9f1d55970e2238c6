"""File names that are not valid UTF-8, stored losslessly.

Python gives such names as str with lone surrogates (surrogateescape), which
PostgreSQL text cannot hold. They are stored as a readable `path` (bad bytes
written as \\xNN) plus the exact bytes in `path_raw`, and turned back into the
very same str when read, so the file is found again on the next scan.

What a reader sees is another matter: `display_path` turns such a name into
the text its author typed, for titles and names read off the path. Names that
are not UTF-8 come from old Windows/Samba shares, so their bytes are a legacy
code page: cp1252 (Western, a superset of Latin-1's printable range) unless
they look like cp1251 Cyrillic, where whole words are bytes 0xC0-0xFF.
"""

from __future__ import annotations

import base64
from typing import Any

from shelfscan.pgtext import pg_text

_CYRILLIC_LETTERS = frozenset(range(0xC0, 0x100)) | {0xA8, 0xB8}  # А-я, Ё, ё in cp1251


def _looks_cyrillic(raw: bytes) -> bool:
    """Cyrillic text in cp1251 is words of high bytes; Western text has one accent per word.

    So: a run of three or more letters in 0xC0-0xFF ("Война" is five), or such
    letters outnumbering the ASCII ones. "café", "Noël" and "Größe" have runs
    of one and stay Western.
    """
    stem = raw.rpartition(b".")[0] or raw  # the extension is ASCII whatever the name
    run = longest = high = ascii_letters = 0
    for byte in stem:
        if byte in _CYRILLIC_LETTERS:
            high += 1
            run += 1
            longest = max(longest, run)
        else:
            run = 0
            if 0x41 <= byte <= 0x5A or 0x61 <= byte <= 0x7A:
                ascii_letters += 1
    return longest >= 3 or (high >= 2 and high > ascii_letters)


def decode_legacy(raw: bytes) -> str:
    """One path segment's bytes as text: UTF-8 when valid, else cp1251 or cp1252; never fails.

    The five bytes cp1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) are
    read as Latin-1, whose control characters they are.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _looks_cyrillic(raw):
        return raw.decode("cp1251", "replace")
    return raw.decode("cp1252", "surrogateescape").translate(_CP1252_HOLES)


_CP1252_HOLES = {0xDC00 + b: b for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}


def display_path(path: str) -> str:
    """`path` with every segment that is not UTF-8 decoded from its legacy code page.

    Valid paths are returned untouched (the common case costs one encode).
    """
    if _is_utf8(path):
        return path
    return "/".join(
        segment if _is_utf8(segment) else decode_legacy(_raw(segment))
        for segment in path.split("/")
    )


def _raw(segment: str) -> bytes:
    try:
        return segment.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate no file system gave: keep it visible
        return segment.encode("utf-8", "backslashreplace")


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def to_db(path: str) -> tuple[str, bytes | None]:
    if _is_utf8(path):
        return path, None
    return pg_text(path), path.encode("utf-8", "surrogateescape")


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

"""Small builders shared by the format tests."""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable
from typing import Any

from tests.conftest import CORPUS_DIR


def png_bytes(width: int, height: int = 1) -> bytes:
    """A valid grey PNG built by hand, so parsers are tested without an imaging library."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        return struct.pack(">I", len(data)) + kind + data + crc

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def corpus_keys(keep: Callable[[str, dict[str, Any]], bool]) -> list[str]:
    """Corpus paths whose ground truth `keep` accepts; none when the corpus is absent.

    Used at collection time for parametrize ids, so it cannot be a fixture; the tests
    themselves still take `corpus_dir`, which skips with a reason when the corpus is absent.
    """
    truth_file = CORPUS_DIR / "truth.json"
    if not truth_file.is_file():
        return []
    truth: dict[str, dict[str, Any]] = json.loads(truth_file.read_text("utf-8"))
    return sorted(k for k, v in truth.items() if keep(k, v))

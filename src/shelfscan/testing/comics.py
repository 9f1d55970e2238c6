"""Comic archives for tests: a RAR 5 writer, since no library here writes RAR.

CBR files carry ComicBookInfo in the RAR archive comment, and libarchive (which
reads CBR members) cannot write RAR at all, so tests had nothing to scan. This
writes the simplest valid RAR 5 archive: stored (uncompressed) members, an
optional stored comment, every header with its CRC-32, as the RAR 5.0 format
describes them. libarchive reads the result like any RAR 5 file.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

__all__ = ["rar4_bytes", "rar5_bytes", "write_cbr"]

_SIGNATURE = b"Rar!\x1a\x07\x01\x00"
_MAIN, _FILE, _SERVICE, _END = 1, 2, 3, 5
_HAS_DATA = 0x0002
_CRC_PRESENT = 0x0004
_UNIX = 1
_REGULAR_FILE = 0o100644


def _vint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _block(kind: int, flags: int, body: bytes, data_size: int | None = None) -> bytes:
    fields = _vint(kind) + _vint(flags)
    if data_size is not None:
        fields += _vint(data_size)
    fields += body
    sized = _vint(len(fields)) + fields
    return struct.pack("<I", zlib.crc32(sized)) + sized


def _member(kind: int, name: bytes, data: bytes, attributes: int) -> bytes:
    body = (
        _vint(_CRC_PRESENT)  # file flags: the data CRC follows
        + _vint(len(data))  # unpacked size
        + _vint(attributes)
        + struct.pack("<I", zlib.crc32(data))
        + _vint(0)  # compression: version 0, method 0 (store)
        + _vint(_UNIX)
        + _vint(len(name))
        + name
    )
    return _block(kind, _HAS_DATA, body, len(data)) + data


def rar5_bytes(files: Mapping[str, bytes | str], comment: str | bytes | None = None) -> bytes:
    """A RAR 5 archive of `files` (stored) with `comment` as its archive comment."""
    parts = [_SIGNATURE, _block(_MAIN, 0, _vint(0))]
    if comment is not None:
        raw = comment.encode() if isinstance(comment, str) else comment
        parts.append(_member(_SERVICE, b"CMT", raw, 0))
    for name, data in files.items():
        raw = data.encode() if isinstance(data, str) else data
        parts.append(_member(_FILE, name.encode(), raw, _REGULAR_FILE))
    parts.append(_block(_END, 0, _vint(0)))
    return b"".join(parts)


def write_cbr(
    path: Path,
    files: Mapping[str, bytes | str],
    comment: str | bytes | None = None,
    *,
    version: int = 5,
) -> Path:
    """Write a CBR as RAR `version` 5 or 4."""
    path.write_bytes((rar5_bytes if version == 5 else rar4_bytes)(files, comment))
    return path


_RAR4_MARKER = b"Rar!\x1a\x07\x00"
_RAR4_LONG_BLOCK = 0x8000
_RAR4_STORED = 0x30


def _rar4_block(kind: int, flags: int, body: bytes) -> bytes:
    rest = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
    return struct.pack("<H", zlib.crc32(rest) & 0xFFFF) + rest


def _rar4_member(kind: int, name: bytes, data: bytes, attributes: int) -> bytes:
    body = struct.pack(
        "<IIBIIBBHI",
        len(data),  # packed size
        len(data),  # unpacked size
        3,  # host OS: Unix
        zlib.crc32(data),
        0x50210000,  # DOS time: 2020-01-01 00:00
        20,  # version needed to extract: 2.0
        _RAR4_STORED,
        len(name),
        attributes,
    )
    return _rar4_block(kind, _RAR4_LONG_BLOCK, body + name) + data


def rar4_bytes(files: Mapping[str, bytes | str], comment: str | bytes | None = None) -> bytes:
    """A RAR 4 archive of `files` (stored) with `comment` in a stored "CMT" sub-block."""
    parts = [_RAR4_MARKER, _rar4_block(0x73, 0, bytes(6))]
    if comment is not None:
        raw = comment.encode() if isinstance(comment, str) else comment
        parts.append(_rar4_member(0x7A, b"CMT", raw, 0))
    for name, data in files.items():
        raw = data.encode() if isinstance(data, str) else data
        parts.append(_rar4_member(0x74, name.encode(), raw, _REGULAR_FILE))
    parts.append(_rar4_block(0x7B, 0x4000, b""))
    return b"".join(parts)

"""Image type and size sniffing from header bytes.

Cover bytes come from untrusted files; reading a few header fields in pure
Python is cheap and cannot trigger a decoder bug, unlike opening the image.
"""

from __future__ import annotations

import struct

__all__ = ["sniff_image"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# SOF0-SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) share the range but do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers that stand alone, with no length field after them.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def sniff_image(data: bytes) -> tuple[str, int, int] | None:
    """Return (mime, width, height) from the header, or None when unrecognised or truncated."""
    head = bytes(data[:32])
    if head.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if head.startswith(_PNG_SIGNATURE):
        return _png(head)
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        width, height = struct.unpack_from("<HH", head, 6)
        return "image/gif", width, height
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(head)
    if head[:2] == b"BM":
        return _bmp(head)
    return None


def _png(head: bytes) -> tuple[str, int, int] | None:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", head, 16)
    return "image/png", width, height


def _webp(head: bytes) -> tuple[str, int, int] | None:
    chunk = head[12:16]
    if chunk == b"VP8 " and len(head) >= 30:
        if head[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack_from("<HH", head, 26)
        return "image/webp", width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(head) >= 25:
        if head[20] != 0x2F:
            return None
        bits = int.from_bytes(head[21:25], "little")
        return "image/webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(head) >= 30:
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return "image/webp", width, height
    return None


def _bmp(head: bytes) -> tuple[str, int, int] | None:
    if len(head) < 26:
        return None
    (dib_size,) = struct.unpack_from("<I", head, 14)
    if dib_size == 12:
        width, height = struct.unpack_from("<HH", head, 18)
        return "image/bmp", width, height
    if dib_size < 40:
        return None
    width, height = struct.unpack_from("<ii", head, 18)
    # A negative height marks a top-down bitmap, not a negative size.
    return "image/bmp", abs(width), abs(height)


def _jpeg(data: bytes) -> tuple[str, int, int] | None:
    pos, end = 2, len(data)
    while pos < end:
        if data[pos] != 0xFF:
            return None
        # Any number of 0xFF fill bytes may precede a marker.
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos >= end:
            return None
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # EOI or start of scan: no frame header came first
            return None
        if pos + 2 > end:
            return None
        (length,) = struct.unpack_from(">H", data, pos)
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            if pos + 7 > end:
                return None
            height, width = struct.unpack_from(">HH", data, pos + 3)
            return "image/jpeg", width, height
        pos += length
    return None

"""Ogg Vorbis, Opus and Ogg FLAC: the comment packet bounded page by page, then mutagen."""

from __future__ import annotations

import struct
from typing import Any, BinaryIO

from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from shelfscan.formats.audio.tags import MAX_TAG_BYTES, Stream, Tags, mutagen_stream
from shelfscan.formats.audio.vorbis import check_comment_count, read_vorbis_comments
from shelfscan.formats.records import ParseError

_MAX_OGG_PAGES = 8192
_OGG_PREFIX_BYTES = 64 * 1024
_OGG_PAGE = struct.Struct("<4sBBqIIIB")


def read_ogg(fh: BinaryIO, size: int, tags: Tags) -> Stream:
    first = _check_ogg(fh, size)
    fh.seek(0)
    if first.startswith(b"OpusHead"):
        ogg: Any = OggOpus(fh)
        codec = "opus"
    elif first.startswith(b"\x7fFLAC"):
        ogg = OggFLAC(fh)
        codec = "flac"
    else:
        ogg = OggVorbis(fh)
        codec = "vorbis"
    if ogg.tags is not None:
        read_vorbis_comments(ogg.tags, tags)
    info = ogg.info
    sample_rate = getattr(info, "sample_rate", None) or (48000 if codec == "opus" else None)
    return mutagen_stream(info, codec, sample_rate)


def _check_ogg(fh: BinaryIO, size: int) -> bytes:
    """Bound the comment packet before mutagen assembles it; return the first packet's start.

    The comment header is the stream's second packet; its size is the sum of
    its lacing values, up to and including the first one below 255.
    """
    pos = 0
    first = b""
    serial: int | None = None
    packet = 0  # index of the packet the next lacing value belongs to
    comment_bytes = 0
    prefix = bytearray()
    for _ in range(_MAX_OGG_PAGES):
        fh.seek(pos)
        header = fh.read(27)
        if len(header) < 27 or header[:4] != b"OggS":
            return first  # mutagen reports a broken stream
        page_serial, n_segments = _OGG_PAGE.unpack(header)[4], header[26]
        lacing = fh.read(n_segments)
        page_len = sum(lacing)
        if serial is None:
            serial = page_serial
            first = fh.read(min(page_len, 16))
            fh.seek(pos + 27 + n_segments)
        if page_serial == serial:
            wanted = packet <= 1 and len(prefix) < _OGG_PREFIX_BYTES
            page = fh.read(page_len) if wanted else b""
            at = 0
            for value in lacing:
                if packet == 1:
                    if len(prefix) < _OGG_PREFIX_BYTES:
                        prefix += page[at : at + value]
                    comment_bytes += value
                    if comment_bytes > MAX_TAG_BYTES:
                        raise ParseError(f"Ogg comment header too large (over {MAX_TAG_BYTES})")
                at += value
                if value < 255:
                    packet += 1
                    if packet >= 2:
                        _check_ogg_comment_prefix(bytes(prefix))
                        return first
        pos += 27 + n_segments + page_len
        if pos >= size:
            return first
    raise ParseError("Ogg comment header spans too many pages")


def _check_ogg_comment_prefix(prefix: bytes) -> None:
    if prefix.startswith(b"OpusTags"):
        magic = 8
    elif prefix.startswith(b"\x03vorbis"):
        magic = 7
    else:
        return  # Ogg FLAC and others: mutagen reads a single bounded block
    if len(prefix) < magic + 4:
        return
    vendor = int.from_bytes(prefix[magic : magic + 4], "little")
    at = magic + 4 + vendor
    if at + 4 > len(prefix):
        raise ParseError("implausible Vorbis comment vendor string")
    check_comment_count(prefix[at : at + 4])

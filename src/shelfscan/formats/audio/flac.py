"""FLAC: metadata blocks walked with bounded reads, then Vorbis comments and pictures via mutagen.

Chapters: Vorbis CHAPTERnnn comments, else a cue sheet, read only for FLAC
files without those (so other formats pay nothing): the CUESHEET comment, else
a `.cue` beside the file (see `cue` for why the binary CUESHEET block is not).
"""

from __future__ import annotations

import os
from typing import BinaryIO

from mutagen.flac import FLAC

from shelfscan.formats.audio.cue import cue_sidecar_text, parse_cue_text
from shelfscan.formats.audio.id3 import id3v2_extent
from shelfscan.formats.audio.tags import MAX_TAG_BYTES, Stream, Tags, mutagen_stream
from shelfscan.formats.audio.vorbis import check_comment_count, read_vorbis_comments
from shelfscan.formats.records import ParseError

_MAX_FLAC_BLOCKS = 4096


def read_flac(fh: BinaryIO, size: int, head: bytes, tags: Tags, path: str) -> Stream:
    _check_flac(fh, size, head)
    fh.seek(0)
    flac = FLAC(fh)
    if flac.tags is not None:
        read_vorbis_comments(flac.tags, tags)
    for picture in flac.pictures[:16]:
        tags.picture(int(picture.type), picture.data, picture.mime)
    info = flac.info
    if not tags.chapters:
        _cue_chapters(tags, path)
    return mutagen_stream(info, "flac")


def _cue_chapters(tags: Tags, path: str) -> None:
    audio_name = os.path.basename(path)
    text = tags.first("cuesheet")
    if text:
        tags.chapters = parse_cue_text(text, audio_name)
    if not tags.chapters:
        sidecar = cue_sidecar_text(path)
        if sidecar:
            tags.chapters = parse_cue_text(sidecar, audio_name)


def _check_flac(fh: BinaryIO, size: int, head: bytes) -> None:
    """Walk the metadata block headers so mutagen never reads an absurd amount."""
    extent = id3v2_extent(head, size)
    pos = extent[3] if extent is not None else 0
    fh.seek(pos)
    if fh.read(4) != b"fLaC":
        return  # mutagen reports what is wrong
    pos += 4
    total = 0
    for _ in range(_MAX_FLAC_BLOCKS):
        fh.seek(pos)
        header = fh.read(8)
        if len(header) < 4:
            return
        block_type, block_size = header[0] & 0x7F, int.from_bytes(header[1:4], "big")
        total += block_size
        if total > MAX_TAG_BYTES:
            raise ParseError(f"FLAC metadata too large (over {MAX_TAG_BYTES} bytes)")
        if block_type == 4 and block_size >= 8 and len(header) == 8:
            vendor = int.from_bytes(header[4:8], "little")
            if vendor + 8 <= block_size:
                fh.seek(pos + 8 + vendor)
                check_comment_count(fh.read(4))
        pos += 4 + block_size
        if header[0] & 0x80:
            return
    raise ParseError("too many FLAC metadata blocks")

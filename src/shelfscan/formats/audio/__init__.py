"""Audiobook metadata reader: M4B/M4A (MP4), MP3, FLAC, Ogg Vorbis and Opus.

Stream facts (duration, codec, bitrate) and the MP4/Vorbis tag decoding come
from mutagen. Every file is hostile input, so before mutagen sees a byte the
container is walked with bounded reads: oversized tags, atom or comment
floods and zip bombs are refused or dropped here, where the cost is known.

One module per container (`mp4`, `id3` for MP3, `flac`, `ogg`, with `vorbis`
for the comments FLAC and Ogg share) fills one `tags.Tags` bag; `conventions`
turns it into a `Metadata` with the audiobook conventions documented there.
This module only sniffs the container and dispatches.
"""

from __future__ import annotations

import binascii
import os
import struct
import zlib
from typing import BinaryIO

from mutagen import MutagenError

from shelfscan.errors import one_line
from shelfscan.formats.audio.conventions import assemble
from shelfscan.formats.audio.flac import read_flac
from shelfscan.formats.audio.id3 import id3v2_extent, read_mp3
from shelfscan.formats.audio.mp4 import read_mp4
from shelfscan.formats.audio.ogg import read_ogg
from shelfscan.formats.audio.tags import MAX_CHAPTERS, MAX_COVER_BYTES, MAX_TAG_BYTES, Tags
from shelfscan.formats.records import Metadata, ParseError
from shelfscan.formats.registry import AUDIO_EXTENSIONS

__all__ = [
    "AUDIO_EXTENSIONS",
    "MAX_CHAPTERS",
    "MAX_COVER_BYTES",
    "MAX_TAG_BYTES",
    "parse_audio",
]


def parse_audio(path: str | os.PathLike[str]) -> Metadata:
    """Read an audio file's metadata; raise ParseError (or FileNotFoundError) when it cannot."""
    name = os.fspath(path)
    fmt = AUDIO_EXTENSIONS.get(os.path.splitext(name)[1].lower())
    try:
        with open(name, "rb") as fh:
            return _parse(fh, fmt, name)
    except (FileNotFoundError, ParseError):
        raise
    except MutagenError as exc:
        raise ParseError(f"not a readable audio file: {one_line(str(exc))}") from None
    except (
        OSError,
        EOFError,
        struct.error,
        zlib.error,
        binascii.Error,
        ValueError,
        IndexError,
        KeyError,
        TypeError,
        AttributeError,
        OverflowError,
        ZeroDivisionError,
        RecursionError,
        AssertionError,  # mutagen asserts on some malformed structures
    ) as exc:
        reason = one_line(str(exc)) or "malformed data"
        raise ParseError(f"not a readable audio file: {type(exc).__name__}: {reason}") from None


def _parse(fh: BinaryIO, fmt: str | None, path: str) -> Metadata:
    size = os.fstat(fh.fileno()).st_size
    if size == 0:
        raise ParseError("empty file")
    head = fh.read(64)
    kind = _sniff(head)
    if head.startswith(b"ID3"):
        # An ID3v2 tag may also front a FLAC stream; what follows the tag decides.
        extent = id3v2_extent(head, size)
        if extent is not None:
            fh.seek(extent[3])
            kind = "flac" if fh.read(4) == b"fLaC" else "mp3"
    fh.seek(0)
    if kind is None:
        kind = {"m4a": "mp4", "m4b": "mp4", "ogg": "ogg", "opus": "ogg"}.get(fmt or "", fmt)
    if kind is None:
        raise ParseError(f"not a recognised audio file: unexpected leading bytes {head[:8]!r}")
    tags = Tags()
    if kind == "mp4":
        if fmt is None:
            fmt = "m4b" if head[8:12] == b"M4B " else "m4a"
        stream = read_mp4(fh, size, tags)
    elif kind == "mp3":
        fmt = fmt or "mp3"
        stream = read_mp3(fh, size, head, tags)
    elif kind == "flac":
        fmt = fmt or "flac"
        stream = read_flac(fh, size, head, tags, path)
    else:
        stream = read_ogg(fh, size, tags)
        fmt = fmt or ("opus" if stream.codec == "opus" else "ogg")
    return assemble(fmt, tags, stream)


def _sniff(head: bytes) -> str | None:
    """The container the bytes show, when they show one unambiguously."""
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3"  # an MPEG audio frame sync
    return None

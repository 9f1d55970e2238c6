"""A Nero `chpl` writer for tests, emitting every layout real writers use.

The box is a full box (version, 24-bit flags) followed by a chapter count and
entries of (u64 start in 100 ns, u8 title length, UTF-8 title). Writers differ
in what sits between the flags and the entries:

* NERO: 4 reserved bytes and an 8-bit count (Nero, ffmpeg; what mutagen reads);
* MP4V2: 1 reserved byte and a 32-bit count (mp4v2, so more than 255 fit);
* BARE: nothing, an 8-bit count (seen in version-0 boxes).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence

from shelfscan.testing.library import _m4b_skeleton


class ChplLayout(enum.Enum):
    NERO = "nero"
    MP4V2 = "mp4v2"
    BARE = "bare"


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def chpl_box(chapters: Sequence[tuple[float, bytes]], *, version: int, layout: ChplLayout) -> bytes:
    """`chapters` are (start seconds, encoded title of at most 255 bytes)."""
    header = bytes([version]) + bytes(3)
    if layout is ChplLayout.NERO:
        assert len(chapters) <= 255
        header += bytes(4) + bytes([len(chapters)])
    elif layout is ChplLayout.MP4V2:
        header += bytes(1) + struct.pack(">I", len(chapters))
    else:
        assert len(chapters) <= 255
        header += bytes([len(chapters)])
    entries = b""
    for start, title in chapters:
        assert len(title) <= 255
        entries += struct.pack(">QB", round(start * 10_000_000), len(title)) + title
    return box(b"chpl", header + entries)


def m4b_with_chpl(chpl: bytes, frames: int = 40) -> bytes:
    """A valid silent M4B whose only chapters are `chpl` (no QuickTime chapter track)."""
    skeleton = _m4b_skeleton(frames, [])
    ftyp_size = struct.unpack_from(">I", skeleton)[0]
    moov_size = struct.unpack_from(">I", skeleton, ftyp_size)[0]
    moov_body = skeleton[ftyp_size + 8 : ftyp_size + moov_size]
    mdat = skeleton[ftyp_size + moov_size :]
    udta_at = moov_body.rindex(b"udta") - 4  # the skeleton's udta is moov's last child
    moov = box(b"moov", moov_body[:udta_at] + box(b"udta", chpl))
    stco = moov.index(b"stco") + 4 + 4 + 4  # type, version/flags, entry count
    moov = moov[:stco] + struct.pack(">I", ftyp_size + len(moov) + 8) + moov[stco + 4 :]
    return skeleton[:ftyp_size] + moov + mdat

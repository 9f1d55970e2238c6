"""Small valid audio files for tests: silent MP3, FLAC, Ogg Opus and M4B that mutagen can tag."""

from __future__ import annotations

import struct
from pathlib import Path

from mutagen.ogg import OggPage

from shelfscan.testing.library import _m4b_skeleton

# MPEG-1 Layer III, no CRC, 128 kbit/s, 44.1 kHz, no padding, single channel.
# Frame length = 144 * 128000 / 44100 = 417 bytes; all-zero side info decodes as silence.
MP3_FRAME = b"\xff\xfb\x90\xc0" + bytes(417 - 4)
MP3_FRAMES = 40  # 40 * 1152 / 44100 = 1.045 s
MP3_SECONDS = MP3_FRAMES * 1152 / 44100
OPUS_PRE_SKIP = 312


def silent_mp3(path: Path, frames: int = MP3_FRAMES) -> Path:
    path.write_bytes(MP3_FRAME * frames)
    return path


def minimal_flac(path: Path, seconds: int = 2) -> Path:
    """A FLAC made of a STREAMINFO block and nothing else: enough for tags and a duration."""
    rate, channels, bits, samples = 44100, 2, 16, 44100 * seconds
    packed = (rate << 44) | ((channels - 1) << 41) | ((bits - 1) << 36) | samples
    streaminfo = struct.pack(">HH", 4096, 4096) + bytes(6) + packed.to_bytes(8, "big") + bytes(16)
    path.write_bytes(b"fLaC" + bytes([0x80]) + len(streaminfo).to_bytes(3, "big") + streaminfo)
    return path


def silent_opus(path: Path, seconds: int = 1, channels: int = 2) -> Path:
    """Ogg Opus with real pages (CRCs set): OpusHead, empty OpusTags, 20 ms silent packets."""
    head = b"OpusHead" + bytes([1, channels]) + struct.pack("<HIhB", OPUS_PRE_SKIP, 48000, 0, 0)
    tags = b"OpusTags" + struct.pack("<I", 4) + b"test" + struct.pack("<I", 0)
    silence = b"\xfc\xff\xfe"  # TOC: CELT FB 20 ms, stereo, one frame
    out = b""
    for sequence, (packets, position) in enumerate(
        (([head], 0), ([tags], 0), ([silence] * (50 * seconds), OPUS_PRE_SKIP + 48000 * seconds))
    ):
        page = OggPage()
        page.serial, page.sequence, page.position, page.packets = 7, sequence, position, packets
        page.first, page.last = sequence == 0, sequence == 2
        out += page.write()
    path.write_bytes(out)
    return path


def silent_m4b(path: Path, frames: int = 40) -> Path:
    """A silent AAC-LC M4B without chapters (the bench library's skeleton)."""
    path.write_bytes(_m4b_skeleton(frames, []))
    return path

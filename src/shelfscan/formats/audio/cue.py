"""Cue sheets as chapters: a FLAC's CUESHEET comment or a `.cue` file beside it.

A single-file rip of a CD or an audiobook keeps its track list in a cue sheet;
each TRACK's INDEX 01 is where a chapter starts. Times are mm:ss:ff with 75
frames a second. A sheet naming several FILEs gives the tracks of the FILE
that matches the audio file's name (by stem, since sheets often still name
the .wav they were ripped from); a sheet naming one FILE gives all its tracks.

FLAC's binary CUESHEET metadata block is not read as chapters: it holds only
CD track offsets (no titles), and ffprobe's habit of turning it into chapters
named by ISRC is what users complain about, not what they want.
"""

from __future__ import annotations

import os
import re

from shelfscan.formats.audio.tags import MAX_CHAPTERS, chapter_title
from shelfscan.formats.records import Chapter

MAX_CUE_BYTES = 1024 * 1024
_LINE_RE = re.compile(r"^\s*(FILE|TRACK|TITLE|INDEX)\s+(.*?)\s*$", re.IGNORECASE)
_QUOTED_RE = re.compile(r'^"(.*)"|^(\S+)')
_INDEX_RE = re.compile(r"^0*1\s+(\d{1,4}):(\d{1,2}):(\d{1,2})$")
_FRAMES_PER_SECOND = 75


def parse_cue_text(text: str, audio_name: str | None = None) -> list[Chapter]:
    """Chapters from a cue sheet's text; [] when it lists no track of this file."""
    files: list[tuple[str, list[tuple[float, str | None]]]] = []
    tracks: list[tuple[float, str | None]] | None = None
    title: str | None = None
    start: float | None = None
    in_track = False

    def close_track() -> None:
        if tracks is not None and in_track and start is not None and len(tracks) < MAX_CHAPTERS:
            tracks.append((start, title))

    for line in text[:MAX_CUE_BYTES].splitlines():
        match = _LINE_RE.match(line)
        if match is None:
            continue
        command, rest = match.group(1).upper(), match.group(2)
        if command == "FILE":
            close_track()
            in_track, title, start = False, None, None
            tracks = []
            files.append((_quoted(rest), tracks))
        elif command == "TRACK":
            close_track()
            in_track, title, start = True, None, None
            if tracks is None:  # a sheet without FILE: one anonymous file
                tracks = []
                files.append(("", tracks))
        elif command == "TITLE" and in_track:
            title = _quoted(rest)
        elif command == "INDEX" and in_track:
            index = _INDEX_RE.match(rest)
            if index is not None:
                minutes, seconds, frames = (int(g) for g in index.groups())
                start = minutes * 60 + seconds + frames / _FRAMES_PER_SECOND
    close_track()
    chosen = _tracks_of(files, audio_name)
    return [
        Chapter(title=chapter_title(name, number), level=0, start_s=round(at, 3))
        for number, (at, name) in enumerate(chosen, start=1)
    ]


def _quoted(rest: str) -> str:
    match = _QUOTED_RE.match(rest)
    if match is None:
        return ""
    return match.group(1) if match.group(1) is not None else match.group(2)


def _tracks_of(
    files: list[tuple[str, list[tuple[float, str | None]]]], audio_name: str | None
) -> list[tuple[float, str | None]]:
    if len(files) == 1:
        return files[0][1]
    if not audio_name:
        return []
    stem = _stem(audio_name)
    for name, tracks in files:
        if _stem(name) == stem:
            return tracks
    return []


def _stem(name: str) -> str:
    return os.path.splitext(os.path.basename(name.replace("\\", "/")))[0].casefold()


def cue_sidecar_text(audio_path: str) -> str | None:
    """The text of `<name>.cue` or `<stem>.cue` beside the audio file, when there is one."""
    stem, _ = os.path.splitext(audio_path)
    for candidate in (audio_path + ".cue", stem + ".cue"):
        try:
            with open(candidate, "rb") as fh:
                raw = fh.read(MAX_CUE_BYTES)
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue
        return decode_cue(raw)
    return None


def decode_cue(raw: bytes) -> str:
    """UTF-8 (with or without BOM) when it decodes, else Windows-1252 as CD rippers write."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")

"""Tokenising a file or folder name: extension, bracket groups, separators, release noise.

Scene and scanner names carry their metadata between noise: `Saga 001 (2012) (Digital)
(Empire-Zone).cbz`, `[BAA]_Darker_than_Black_c7.zip`, `Gantz.V26.cbz`. Everything here turns
such a name into plain text plus the bracketed groups it held, so the number and series
readers never see scan-group tags, and the groups (a year, a `(v01)`) stay available.
"""

from __future__ import annotations

import re

from shelfscan.formats.text import clean

__all__ = [
    "COMIC_EXTS",
    "TRACK_EXTS",
    "is_disc_folder",
    "is_noise",
    "spaced",
    "split_name",
    "strip_groups",
    "trim_separators",
]

TRACK_EXTS = frozenset(
    {"mp3", "m4a", "mp4", "flac", "ogg", "oga", "opus", "wav", "aac", "wma", "aif", "aiff", "mka"}
)
COMIC_EXTS = frozenset({"cbz", "cbr", "cb7", "cbt", "cba"})
_DOUBLE_EXTS = (".kepub.epub", ".fb2.zip")
# A name longer than any file system allows (255 bytes) is hostile input: only its start is read.
MAX_NAME_CHARS = 512

# Innermost bracket groups; applied a few times, so "(Top Cow (Image Comics))" goes too.
_GROUP_RE = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]|\{([^{}]*)\}|【([^【】]*)】")
_DOTTED_RE = re.compile(r"(?<!\d)\.|\.(?!\d)")
# Release and quality noise that is left bare in names ("Demon 012 c2c", "... webrip").
_NOISE = frozenset(
    {
        "digital", "digital-hd", "webrip", "web-rip", "web-dl", "webdl", "c2c", "f", "hd",
        "hq", "lq", "hr", "scan", "scans", "retail", "repack", "proper", "ocr", "dcp",
        "480p", "576p", "720p", "1080p", "1440p", "2160p", "4k", "x264", "x265",
        "unabridged", "abridged", "audiobook", "ebook", "epub", "mobi", "azw3", "pdf",
        "mp3", "m4b", "kepub", "cbz", "cbr", "english", "eng", "raw", "uncensored", "ongoing",
        "complete", "completed", "end", "fixed",
    }
)  # fmt: skip
_SEPARATORS = " -_,:;~–—"
# Disc folders ("CD 1", "Disc 2", "Part 3") hold parts of the book in their parent folder.
_DISC_DIR_RE = re.compile(r"^(?:cd|dis[ck]|part)\s*[-_ ]?\s*\d{1,3}$", re.IGNORECASE)


def split_name(filename: str) -> tuple[str, str]:
    """(stem, lower-case extension); "Mr. Smith" has no extension, ".kepub.epub" is one."""
    lowered = filename.lower()
    for double in _DOUBLE_EXTS:
        if lowered.endswith(double) and len(filename) > len(double):
            return filename[: -len(double)], double.rpartition(".")[2]
    stem, dot, ext = filename.rpartition(".")
    if dot and stem.strip() and 1 <= len(ext) <= 5 and ext.isalnum() and not ext.isdigit():
        return stem, ext.lower()
    return filename, ""


def spaced(text: str, *, dots: bool = False) -> str:
    """Underscores read as spaces, whitespace collapsed, control characters dropped (as
    `formats.text.clean`); with `dots`, a dotted name
    without spaces ("Gantz.V26") reads its dots as spaces too (decimals survive)."""
    text = text[:MAX_NAME_CHARS]
    if "_" in text:
        text = text.replace("_", " ")
    if dots and " " not in text and "." in text:
        text = _DOTTED_RE.sub(" ", text)
    return clean(text) or ""


def strip_groups(text: str) -> tuple[str, tuple[str, ...]]:
    """Text without its bracket groups, and the groups' inner texts in order of removal.

    Unbalanced brackets stay in the text ("諌山創] 進撃の巨人" keeps its "]").
    """
    if not any(ch in text for ch in "([{【"):
        return text, ()
    groups: list[str] = []

    def take(match: re.Match[str]) -> str:
        inner = next(g for g in match.groups() if g is not None)
        groups.append(" ".join(inner.split()))
        return " "

    for _ in range(3):
        text, count = _GROUP_RE.subn(take, text)
        if not count:
            break
    return " ".join(text.split()), tuple(groups)


def is_noise(word: str) -> bool:
    """A release, quality or format word that never names a book ("Digital", "c2c", "1080p")."""
    return word.casefold() in _NOISE


def trim_separators(text: str) -> str:
    """Strip separators (space, dash, underscore, comma, colon...) from both ends; dots stay
    ("Hentai Ouji to Warawanai Neko." is a real series name)."""
    return text.strip(_SEPARATORS)


def is_disc_folder(name: str) -> bool:
    """A disc folder ("CD 1", "Disc 2", "Part 3", "cd01"): part of the book above it."""
    return _DISC_DIR_RE.match(name.strip()) is not None

"""Synthetic ebook libraries with a ground-truth manifest, for tests and benchmarks.

A library is planned by one seeded RNG (authors, books per author, series, titles,
creators, genres, paths) and each file is then realised from its own RNG seeded
with (seed, kind, index). That split keeps the output byte-identical whatever the
number of worker processes, so a 100,000-book benchmark library can be built in
parallel and cached by its parameters. `manifest.jsonl` records what every file
says, so a parser can be checked against it.

Audiobooks (``audio=M``) are M4B files or MP3 books in 1-3 parts, silent but valid,
tagged through mutagen as audiobook tools tag them (narrators, series, chapters).

CLI: ``python -m shelfscan.testing.library --books N --out DIR [--seed S] [--audio M]
[--layout abs|flat] [--placeholders] [--jobs J] [--chapter-bytes B] [--audio-seconds S]``
"""

from __future__ import annotations

import argparse
import hashlib
import html
import io
import json
import os
import random
import re
import shutil
import struct
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TextIO

from mutagen.id3 import (
    APIC,
    COMM,
    ID3,
    TALB,
    TCON,
    TDRC,
    TIT2,
    TPE1,
    TPE2,
    TPUB,
    TRCK,
    TXXX,
    PictureType,
)
from mutagen.mp4 import MP4, AtomDataType, MP4Cover, MP4FreeForm

from shelfscan.testing.covers import cover_jpeg
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, epub_bytes

__all__ = [
    "GENERATOR_VERSION",
    "LibraryManifest",
    "ManifestEntry",
    "generate_library",
    "generate_library_cached",
    "isbn13_check_digit",
    "load_manifest",
    "main",
]

GENERATOR_VERSION = 1
"""Bump whenever the output for given parameters changes: it is part of the cache key."""

MANIFEST_NAME = "manifest.jsonl"
COMPLETE_MARKER = ".shelfscan-library.json"
MTIME_EPOCH = 1_704_067_200  # 2024-01-01T00:00:00Z; file i gets EPOCH + i seconds
CHAPTERS_PER_BOOK = 5
COVER_BYTES = 50_000
Layout = Literal["abs", "flat"]

# --- vocabulary (immutable) ----------------------------------------------------------------------

_FIRST_NAMES = (
    "Émile", "Søren", "Zoë", "Åsa", "Björn", "Chloé", "Jürgen", "François", "Inés", "José",
    "Łukasz", "Małgorzata", "Renée", "Noël", "Anaïs", "Ørjan", "Žofie", "Ágnes", "Ólafur",
    "Siân", "Mikaël", "Dörte", "Håkon", "Ignác", "Joël", "Anna", "Ben", "Clara", "David",
    "Eleanor", "Frank", "Grace", "Henry", "Iris", "Jack", "Kate", "Liam", "Maya", "Nathan",
    "Olivia", "Peter", "Quinn", "Rosa", "Samuel", "Tessa", "Umar", "Vera", "Walter", "Xenia",
    "Yusuf", "Zara", "Alice", "Bruno", "Cecilia", "Dmitri", "Elena", "Felix", "Greta", "Hugo",
    "Ingrid", "Julian", "Kenji", "Lucia", "Marco", "Nadia", "Oscar", "Paula", "Rafael", "Sofia",
    "Tomas", "Ursula", "Viktor", "Wanda", "Yara", "Amara", "Bianca", "Caspar", "Daphne", "Edgar",
    "Fiona", "Gideon", "Helena", "Isaac", "Jonas", "Karin", "Leon", "Mirela", "Nils", "Orla",
    "Pavel", "Rhea", "Stellan", "Thea", "Ulrich", "Valentina", "Wim", "Yvonne", "Aurélie",
    "Benoît", "Cécile", "Dagný", "Eóin",
)  # fmt: skip
_LAST_NAMES = (
    "Müller", "Dvořák", "Brontë", "García", "Núñez", "Øvergaard", "Černý", "Łopatka", "Schröder",
    "O'Connor", "Smith-Jones", "van der Berg", "de la Cruz", "Ångström", "Gödel", "Kovačević",
    "Lindqvist", "Þórsson", "Söderström", "Jørgensen", "Ibáñez", "Lefèvre", "Nowak", "Zieliński",
    "Abbott", "Baker", "Carter", "Dawson", "Ellis", "Fletcher", "Graham", "Hughes", "Irving",
    "Jensen", "Keller", "Lambert", "Morgan", "Nash", "Owens", "Parker", "Quincy", "Reed",
    "Sawyer", "Turner", "Underwood", "Vaughn", "Walsh", "Young", "Zimmerman", "Alvarez", "Becker",
    "Castillo", "Duval", "Eriksen", "Fischer", "Gallo", "Hartmann", "Ivanova", "Jansen", "Kato",
    "Larsen", "Moreau", "Nakamura", "Olsen", "Petrov", "Rossi", "Schmidt", "Tanaka", "Ueda",
    "Vargas", "Weber", "Yilmaz", "Adler", "Blackwood", "Crane", "Drummond", "Everett", "Finch",
    "Goodwin", "Holloway", "Ingram", "Jameson", "Kingsley", "Lockhart", "Merriweather", "Norwood",
    "Ashford", "Bellamy", "Calloway", "Delacroix", "Fairbanks", "Greenwood", "Hawthorne",
    "Kowalski", "Lindgren", "Marchetti", "Novak", "Oyelaran", "Pellegrini", "Rasmussen",
    "Sørensen", "Thorne", "Valdés", "Whitaker", "Yamamoto", "Zeller", "Brennan", "Costa",
    "Dumont", "Esposito", "Ferreira", "Gutiérrez", "Halvorsen", "Iglesias", "Janssen", "Krüger",
    "Lehmann", "Mendoza", "Nieminen", "Ortega", "Pereira", "Quiroga", "Romero", "Svoboda",
    "Teixeira", "Urbano", "Villanueva", "Wagner", "Xu", "Yates", "Zhang",
)  # fmt: skip
_ADJECTIVES = (
    "Silent", "Hollow", "Crimson", "Forgotten", "Burning", "Distant", "Golden", "Broken", "Hidden",
    "Last", "Secret", "Winter", "Wandering", "Quiet", "Shattered", "Midnight", "Iron", "Glass",
    "Lost", "Bright", "Sleeping", "Frozen", "Wild", "Ancient", "Bitter", "Endless", "Pale",
    "Restless", "Scarlet", "Velvet", "Northern", "Drowned", "Gilded", "Little", "Savage",
    "Twisted", "Amber", "Copper", "Fallen", "Silver", "Tender", "Unspoken", "Vanishing",
    "Naïve", "Sunken", "Paper", "Stolen", "Painted", "Empty", "Patient",
)  # fmt: skip
_NOUNS = (
    "Crown", "River", "Garden", "Mirror", "Harbour", "Lantern", "Orchard", "Witness", "Kingdom",
    "Shadow", "Tide", "Letter", "Compass", "Feather", "Island", "Library", "Forest", "Bridge",
    "Storm", "Daughter", "Engine", "Clockmaker", "Lighthouse", "Cartographer", "Promise", "Sea",
    "Winter", "Atlas", "Café", "Fjord", "Archive", "Citadel", "Pilgrim", "Orchestra", "Voyage",
    "Heir", "Serpent", "Meadow", "Cathedral", "Alchemist", "Tower", "Bargain", "Masquerade",
    "Sparrow", "Glacier", "Labyrinth", "Chronicle", "Ember", "Frontier", "Requiem", "Façade",
    "Mountain", "Widow", "Harvest", "Signal", "Paradox", "Saint", "Thief", "Wolf", "Oracle",
)  # fmt: skip
_PLACES = (
    "Zürich", "Malmö", "København", "Ålesund", "Kraków", "São Paulo", "Reykjavík", "Besançon",
    "Córdoba", "Tromsø", "Lisbon", "Prague", "Vienna", "Kyoto", "Marrakesh", "Dublin", "Oslo",
    "Tbilisi", "Valparaíso", "Montréal", "Gdańsk", "Île-de-France", "Brno", "Graz",
)  # fmt: skip
_TITLE_PATTERNS = (
    "The {adj} {noun}", "The {adj} {noun}", "The {noun} of {place}", "{adj} {noun}",
    "A {noun} in {place}", "The {noun} and the {noun2}", "The {noun} & the {noun2}",
    "{noun}: A Novel", "Who Stole the {noun}?", "Notes from {place}", "{place} / {place2}",
    "The {adj} {noun} of {place}", "Under the {adj} {noun}", "{noun} \"{adj}\"",
    "The {noun}'s {noun2}", "Beyond the {noun}", "When the {noun} Falls", "<{noun}>",
)  # fmt: skip
_SERIES_PATTERNS = (
    "The {noun} Cycle", "{place} Mysteries", "The {adj} {noun} Saga", "Chronicles of {place}",
    "The {noun} Trilogy", "{adj} {noun}", "Tales of the {adj} {noun}", "The {place} Quartet",
)  # fmt: skip
_SUBTITLES = (
    "A Novel", "Stories", "A Memoir", "A Mystery", "An Adventure in {place}",
    "The {adj} Years", "Book One", "A Tale of {place}", "Selected Essays", "Poems",
)  # fmt: skip
_GENRES = (
    "Fantasy", "Science Fiction", "Mystery", "Thriller", "Romance", "Historical Fiction",
    "Literary Fiction", "Horror", "Crime", "Young Adult", "Biography", "History", "Memoir",
    "Poetry", "Philosophy", "Travel", "Cookery", "Children's", "Humour", "Self-Help", "Business",
    "Politics", "Science", "Mathematics", "Art", "Music", "Religion", "Psychology", "Economics",
    "True Crime", "Graphic Novels", "Short Stories", "Drama", "Essays", "War", "Westerns",
    "Adventure", "Dystopian", "Paranormal", "Urban Fantasy", "Space Opera", "Cyberpunk",
    "Steampunk", "Cosy Mystery", "Espionage", "Sports", "Nature", "Technology",
    "Health & Fitness", "Science-Fiction & Fantasy",
)  # fmt: skip
_PUBLISHERS = (
    "Harbour Lights Press", "Gallimard & Fils", "Éditions du Sablier", "Forlaget Ørnen",
    "Müller & Söhne", "Ediciones Señal", "Northwind Books", "Quillfeather", "Blue Heron House",
    "Kestrel & Crane", "Lanterna Editrice", "Wydawnictwo Świt", "Nakladatelství Řeka",
    "Meridian Paperbacks", "Old Mill Publishing", "Sable Street", "Tidewater Editions",
    "Bokförlaget Älv", "Copperleaf", "Three Owls Press",
)  # fmt: skip
_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "sv", "da", "pl", "cs")
_LANGUAGE_WEIGHTS = (80, 4, 4, 3, 2, 2, 1, 1, 2, 1)
_WORDS = (
    "the", "of", "and", "a", "to", "in", "was", "he", "she", "it", "that", "with", "for", "his",
    "her", "they", "at", "on", "had", "by", "from", "but", "not", "all", "were", "we", "when",
    "there", "one", "would", "their", "what", "so", "out", "if", "about", "who", "them", "into",
    "light", "river", "house", "night", "window", "letter", "voice", "road", "morning", "door",
    "silence", "garden", "hands", "stranger", "memory", "winter", "city", "harbour", "train",
    "quietly", "suddenly", "never", "always", "almost", "again", "slowly", "perhaps", "still",
    "remembered", "walked", "whispered", "watched", "waited", "opened", "carried", "followed",
    "believed", "forgot", "answered", "turned", "listened", "smiled", "counted", "wondered",
    "café", "naïve", "façade", "déjà", "fjord", "smörgåsbord", "jalapeño", "über", "Zürich",
    "Søren", "Zoë", "crème", "piñata", "rôle", "coöperate", "mañana", "Ångström", "Dvořák",
    "old", "cold", "bright", "narrow", "heavy", "small", "patient", "distant", "ordinary",
    "strange", "careful", "broken", "green", "grey", "last", "first", "long", "late", "early",
)  # fmt: skip

_ROLES = ("aut", "edt", "trl", "ill")
_ROLE_WEIGHTS = (50, 20, 20, 10)
_ILLEGAL = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"com{i}" for i in range(1, 10)}
    | {f"lpt{i}" for i in range(1, 10)}
)
_MAX_NAME_BYTES = 120
_PARAGRAPH_POOL = 512
_CHAPTER_POOL = 256

# --- records -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One line of manifest.jsonl: what a file says, for checking parsers against."""

    path: str  # relative to the library root, "/" separated
    kind: str  # "epub" | "mp3" | "m4b"
    style: str | None  # "epub2" | "epub3" for EPUBs
    title: str
    subtitle: str | None
    creators: tuple[CreatorSpec, ...]
    authors: tuple[str, ...]
    genres: tuple[str, ...]
    series: str | None
    series_index: str | None
    isbn: str | None
    uuid: str | None
    language: str
    publisher: str | None
    date: str | None
    description: str | None
    has_cover: bool
    chapters: int
    bytes: int
    mtime: int
    narrators: tuple[str, ...] = ()
    seconds: float | None = None  # audio: the duration mutagen reports
    track: str | None = None  # MP3 parts: "2/3"

    def to_json(self) -> str:
        data: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        data["creators"] = [
            {"name": c.name, "role": c.role, "file_as": c.file_as} for c in self.creators
        ]
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> ManifestEntry:
        data: dict[str, Any] = json.loads(line)
        data["creators"] = tuple(CreatorSpec(**c) for c in data["creators"])
        for key in ("authors", "genres", "narrators"):
            data[key] = tuple(data.get(key) or ())
        return cls(**data)


@dataclass(frozen=True, slots=True)
class LibraryManifest:
    """A generated library; `entries()` streams the manifest so 100k books stay cheap."""

    root: Path
    books: int
    audio: int
    files: int
    total_bytes: int

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST_NAME

    def entries(self) -> Iterator[ManifestEntry]:
        return load_manifest(self.manifest_path)


def load_manifest(path: Path) -> Iterator[ManifestEntry]:
    """Stream the entries of a manifest.jsonl."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield ManifestEntry.from_json(line)


@dataclass(frozen=True, slots=True)
class _PlannedBook:
    """What the plan fixes for one book; everything else comes from the book's own RNG."""

    index: int
    path: str
    title: str
    creators: tuple[CreatorSpec, ...]
    genres: tuple[str, ...]
    series: str | None
    series_index: str | None


@dataclass(frozen=True, slots=True)
class _PlannedAudio:
    """One audio file of an audiobook (an M4B, or one part of an MP3 book)."""

    index: int
    book: int  # audiobook number: its metadata RNG is seeded from it
    path: str
    format: Literal["mp3", "m4b"]
    part: int
    parts: int
    title: str
    creators: tuple[CreatorSpec, ...]
    genres: tuple[str, ...]
    series: str | None
    series_index: str | None
    narrators: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Chunk:
    """A batch of files for one worker call (one pickle per batch, not per file)."""

    root: str
    seed: int
    items: tuple[_PlannedBook | _PlannedAudio, ...]
    placeholders: bool
    chapter_bytes: int
    audio_seconds: float


@dataclass(frozen=True, slots=True)
class _Draft:
    """A planned book before its path is allocated."""

    author: str
    title: str
    creators: tuple[CreatorSpec, ...]
    genres: tuple[str, ...]
    series: str | None
    series_index: str | None


@dataclass(frozen=True, slots=True)
class _Author:
    """A library author and how many books the plan gives them."""

    name: str
    file_as: str
    books: int


# --- small pure helpers ------------------------------------------------------------------------


def isbn13_check_digit(first12: str) -> str:
    """The ISBN-13 check digit for the first twelve digits."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


def sanitize_name(name: str) -> str:
    """A path component safe on Linux, macOS and Windows: illegal characters become "_"."""
    cleaned = _ILLEGAL.sub("_", name)
    cleaned = " ".join(cleaned.split()).rstrip(". ").lstrip(" ")
    encoded = cleaned.encode("utf-8")
    if len(encoded) > _MAX_NAME_BYTES:
        cleaned = encoded[:_MAX_NAME_BYTES].decode("utf-8", "ignore").rstrip(". ")
    if not cleaned:
        cleaned = "_"
    if cleaned.split(".")[0].casefold() in _RESERVED:
        cleaned += "_"
    return cleaned


def _fill(pattern: str, rng: random.Random) -> str:
    noun, noun2 = rng.sample(_NOUNS, 2)
    place, place2 = rng.sample(_PLACES, 2)
    return pattern.format(
        adj=rng.choice(_ADJECTIVES), noun=noun, noun2=noun2, place=place, place2=place2
    )


@lru_cache(maxsize=1)
def _genre_cum_weights() -> tuple[float, ...]:
    """Zipf-like (1/rank) cumulative weights over the fixed genre list."""
    total = 0.0
    cumulative = []
    for rank in range(1, len(_GENRES) + 1):
        total += 1.0 / rank
        cumulative.append(total)
    return tuple(cumulative)


def _pick_genres(rng: random.Random) -> tuple[str, ...]:
    chosen: list[str] = []
    weights = _genre_cum_weights()
    while len(chosen) < 3:
        genre = rng.choices(_GENRES, cum_weights=weights)[0]
        if genre not in chosen:
            chosen.append(genre)
    return tuple(chosen)


@lru_cache(maxsize=1)
def _paragraphs() -> tuple[str, ...]:
    """A fixed pool of prose paragraphs, with a few characters that need escaping;
    chapter bodies are assembled from it once per process."""
    rng = random.Random("shelfscan-paragraphs")
    pool = []
    for _ in range(_PARAGRAPH_POOL):
        sentences = []
        for _ in range(rng.randint(2, 9)):
            words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 22))]
            roll = rng.random()
            if roll < 0.04:
                words.insert(rng.randrange(len(words)), "&")
            elif roll < 0.06:
                words.insert(rng.randrange(len(words)), "<b>not bold</b>")
            elif roll < 0.15:
                words[0] = "“" + words[0]
                words[-1] += "”"
            sentence = " ".join(words)
            sentences.append(sentence[0].upper() + sentence[1:] + rng.choice(".....?!"))
        pool.append(" ".join(sentences))
    return tuple(pool)


@lru_cache(maxsize=4)
def _chapter_bodies(chapter_bytes: int) -> tuple[str, ...]:
    """A fixed pool of chapter texts about `chapter_bytes` long (±20%), built from the
    paragraph pool. Books draw whole bodies from it, so the EPUB writer deflates each
    body once per process while every book still gets its own mix of chapters."""
    paragraphs = _paragraphs()
    rng = random.Random(f"shelfscan-chapters:{chapter_bytes}")
    bodies = []
    for _ in range(_CHAPTER_POOL):
        target = chapter_bytes * rng.uniform(0.8, 1.2)
        picked: list[str] = []
        filled = 0
        while filled < target:
            paragraph = rng.choice(paragraphs)
            picked.append(paragraph)
            filled += len(paragraph.encode()) + 8  # "<p></p>\n" around it
        bodies.append("\n\n".join(picked))
    return tuple(bodies)


# --- the plan ----------------------------------------------------------------------------------


def _author_names(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """`count` distinct (name, file_as) pairs; middle initials once plain names run short."""
    plain_space = len(_FIRST_NAMES) * len(_LAST_NAMES)
    plain = min(count, plain_space // 2)
    names: list[tuple[str, str]] = []
    for k in rng.sample(range(plain_space), plain):
        first, last = _FIRST_NAMES[k % len(_FIRST_NAMES)], _LAST_NAMES[k // len(_FIRST_NAMES)]
        names.append((f"{first} {last}", f"{last}, {first}"))
    initials = "ABCDEFGHIJKLMNOPRSTVW"
    for k in rng.sample(range(plain_space * len(initials)), count - plain):
        first = _FIRST_NAMES[k % len(_FIRST_NAMES)]
        rest = k // len(_FIRST_NAMES)
        initial, last = initials[rest % len(initials)], _LAST_NAMES[rest // len(initials)]
        names.append((f"{first} {initial}. {last}", f"{last}, {first} {initial}."))
    return names


def _books_per_author(rng: random.Random, authors: int, books: int) -> list[int]:
    """Power-law counts, at least one each, summing exactly to `books`.

    Pareto weights are softly capped: an uncapped alpha near 1 lets one author own a
    third of a small library, which makes sizes swing wildly between seeds."""
    weights = []
    for _ in range(authors):
        weight = rng.paretovariate(1.1)
        weights.append(weight if weight < 200.0 else 200.0 * rng.uniform(0.7, 1.0))
    spare = books - authors
    scale = spare / sum(weights)
    shares = [w * scale for w in weights]
    counts = [1 + int(s) for s in shares]
    leftover = books - sum(counts)
    by_remainder = sorted(range(authors), key=lambda i: (int(shares[i]) - shares[i], i))
    for i in by_remainder[:leftover]:
        counts[i] += 1
    return counts


def _series_size(rng: random.Random) -> int:
    return min(12, 2 + int(rng.expovariate(1 / 2.6)))


def _series_positions(rng: random.Random, size: int) -> list[str]:
    """Reading order labels: 1, 2, 3 ... with about 4% of entries a novella like "2.5"."""
    labels: list[str] = []
    whole, half = 0, False
    for k in range(size):
        if k > 0 and not half and rng.random() < 0.06:
            half = True
        else:
            whole, half = whole + 1, False
        labels.append(f"{whole}.5" if half else str(whole))
    return labels


def _title_for(rng: random.Random, previous: list[str], *, standalone: bool) -> str:
    """A title new to this author, except ~1% second editions of a standalone (same
    title, sometimes in another case) that exercise the " (2)" collision rule."""
    if standalone and previous and rng.random() < 0.01:
        title = rng.choice(previous)
        return title if rng.random() < 0.5 else title.lower()
    folded = {t.casefold() for t in previous}
    title = _fill(rng.choice(_TITLE_PATTERNS), rng)
    for _ in range(8):
        if title.casefold() not in folded:
            break
        title = _fill(rng.choice(_TITLE_PATTERNS), rng)
    return title


def _creators_for(
    rng: random.Random, author: _Author, authors: Sequence[_Author]
) -> tuple[CreatorSpec, ...]:
    """The owning author first, then 0-2 other people (author, editor, translator, illustrator)."""
    creators = [CreatorSpec(author.name, "aut", author.file_as)]
    roll = rng.random()
    extras = 2 if roll < 0.07 else 1 if roll < 0.30 else 0
    while extras and len(authors) > 1:
        other = authors[rng.randrange(len(authors))]
        if all(c.name != other.name for c in creators):
            role = rng.choices(_ROLES, weights=_ROLE_WEIGHTS)[0]
            creators.append(CreatorSpec(other.name, role, other.file_as))
            extras -= 1
    return tuple(creators)


def _plan(
    books: int, seed: int, layout: Layout, audio: int = 0
) -> tuple[list[_PlannedBook], list[_PlannedAudio]]:
    """The whole library plan, paths included, from one seeded RNG.

    Audiobooks are planned after the ebooks, so adding audio leaves the ebooks as they were."""
    rng = random.Random(seed)
    author_count = max(1, min(books, round(books / 5)))
    authors = [
        _Author(name, file_as, n)
        for (name, file_as), n in zip(
            _author_names(rng, author_count),
            _books_per_author(rng, author_count, books),
            strict=True,
        )
    ]

    # Series: walk authors weighted by their book counts, 2-12 books each, one owner.
    series_target = round(books * 0.08)
    unassigned = [a.books for a in authors]
    series_of: list[list[tuple[str, tuple[str, ...]]]] = [[] for _ in authors]  # (name, genres)
    series_sizes: list[list[int]] = [[] for _ in authors]
    slots = [i for i, a in enumerate(authors) for _ in range(a.books)]
    rng.shuffle(slots)
    series_names: set[str] = set()
    cursor = 0
    for _ in range(series_target if len(slots) > 1 else 0):
        # Draw the size first, then take the next owner (in a by-book-count order) with room.
        size = _series_size(rng)
        owner = -1
        for step in range(len(slots)):
            candidate = slots[(cursor + step) % len(slots)]
            if unassigned[candidate] >= size:
                owner, cursor = candidate, cursor + step + 1
                break
        if owner < 0:
            roomiest = max(range(len(authors)), key=lambda i: (unassigned[i], -i))
            if unassigned[roomiest] < 2:
                break
            owner, size = roomiest, min(size, unassigned[roomiest])
        name = _fill(rng.choice(_SERIES_PATTERNS), rng)
        while name.casefold() in series_names:
            name = f"{name} {rng.choice(('II', 'III', 'Redux', 'Reborn'))}"
        series_names.add(name.casefold())
        series_of[owner].append((name, _pick_genres(rng)))
        series_sizes[owner].append(size)
        unassigned[owner] -= size

    planned: list[_Draft] = []
    for a_index, author in enumerate(authors):
        slots_for_author: list[tuple[str | None, str | None, tuple[str, ...]]] = []
        for (owned, owned_genres), size in zip(
            series_of[a_index], series_sizes[a_index], strict=True
        ):
            slots_for_author.extend(
                (owned, position, owned_genres) for position in _series_positions(rng, size)
            )
        slots_for_author.extend((None, None, _pick_genres(rng)) for _ in range(unassigned[a_index]))
        titles: list[str] = []
        for series_name, position, genres in slots_for_author:
            title = _title_for(rng, titles, standalone=series_name is None)
            titles.append(title)
            planned.append(
                _Draft(
                    author.name,
                    title,
                    _creators_for(rng, author, authors),
                    genres,
                    series_name,
                    position,
                )
            )
    rng.shuffle(planned)

    allocator = _PathAllocator()
    result: list[_PlannedBook] = []
    for index, draft in enumerate(planned):
        author_part = sanitize_name(draft.author)
        stem = f"{sanitize_name(draft.title)} - {author_part}"
        if layout == "flat":
            path = allocator.child("ebooks", stem, ".epub")
        else:
            parent = allocator.shared("ebooks", draft.author, author_part)
            if draft.series is not None:
                parent = allocator.shared(parent, draft.series, sanitize_name(draft.series))
            folder = allocator.child(parent, sanitize_name(draft.title))
            path = f"{folder}/{stem}.epub"
        result.append(
            _PlannedBook(
                index,
                path,
                draft.title,
                draft.creators,
                draft.genres,
                draft.series,
                draft.series_index,
            )
        )
    return result, _plan_audio(rng, audio, planned, authors, allocator, layout, len(result))


def _plan_audio(
    rng: random.Random,
    count: int,
    ebooks: Sequence[_Draft],
    authors: Sequence[_Author],
    allocator: _PathAllocator,
    layout: Layout,
    first_index: int,
) -> list[_PlannedAudio]:
    """Audiobooks: about half are editions of an ebook (same title, authors, series), half
    new titles by library authors. Format alternates ~50/50 between single-file M4B and
    MP3 books in 1-3 parts; one narrator per ~8 audiobooks, none of them an author."""
    if count <= 0:
        return []
    taken = {a.name for a in authors}
    narrator_pool = [
        name
        for name, _ in _author_names(rng, max(1, round(count / 8)) + len(taken))
        if name not in taken
    ][: max(1, round(count / 8))]
    editions = iter(rng.sample(range(len(ebooks)), min(len(ebooks), count)))
    result: list[_PlannedAudio] = []
    for book in range(count):
        source = next(editions, None) if rng.random() < 0.5 else None
        if source is not None:
            draft = ebooks[source]
            owner, title, series, series_index = (
                draft.author,
                draft.title,
                draft.series,
                draft.series_index,
            )
            creators = tuple(c for c in draft.creators if c.role == "aut")
            genres = draft.genres
        else:
            author = authors[rng.randrange(len(authors))]
            owner, title, series, series_index = (
                author.name,
                _title_for(rng, [], standalone=True),
                None,
                None,
            )
            creators = (CreatorSpec(author.name, "aut", author.file_as),)
            genres = _pick_genres(rng)
        genres = genres[: rng.choice((2, 3))]
        narrators = tuple(
            rng.sample(narrator_pool, min(len(narrator_pool), 1 if rng.random() < 0.85 else 2))
        )
        fmt: Literal["mp3", "m4b"] = "mp3" if rng.random() < 0.5 else "m4b"
        parts = rng.choices((1, 2, 3), weights=(60, 25, 15))[0] if fmt == "mp3" else 1
        author_part, title_part = sanitize_name(owner), sanitize_name(title)
        if layout == "abs":
            parent = allocator.shared("audiobooks", owner, author_part)
            if series is not None:
                parent = allocator.shared(parent, series, sanitize_name(series))
            folder = allocator.child(parent, title_part)
        for part in range(1, parts + 1):
            label = f" - Part {part:02d}" if parts > 1 else ""
            if layout == "abs":
                path = f"{folder}/{title_part}{label}.{fmt}"
            else:
                path = allocator.child(
                    "audiobooks", f"{title_part} - {author_part}{label}", f".{fmt}"
                )
            result.append(
                _PlannedAudio(
                    first_index + len(result),
                    book,
                    path,
                    fmt,
                    part,
                    parts,
                    title,
                    creators,
                    genres,
                    series,
                    series_index,
                    narrators,
                )
            )
    return result


class _PathAllocator:
    """Hands out path components that are unique case-insensitively within their folder."""

    def __init__(self) -> None:
        self._taken: dict[str, set[str]] = {}
        self._shared: dict[tuple[str, object], str] = {}

    def child(self, parent: str, name: str, suffix: str = "") -> str:
        """A new entry `name[ (n)]suffix` under `parent`, returned as a path."""
        taken = self._taken.setdefault(parent, set())
        candidate, n = name, 1
        while (candidate + suffix).casefold() in taken:
            n += 1
            candidate = f"{name} ({n})"
        taken.add((candidate + suffix).casefold())
        return f"{parent}/{candidate}{suffix}"

    def shared(self, parent: str, key: object, name: str) -> str:
        """The one folder for `key` (an author, a series) under `parent`, made on first use."""
        existing = self._shared.get((parent, key))
        if existing is None:
            existing = self.child(parent, name)
            self._shared[(parent, key)] = existing
        return existing


# --- realising one book ------------------------------------------------------------------------


def _realise(
    book: _PlannedBook, seed: int, chapter_bytes: int, with_content: bool
) -> tuple[ManifestEntry, EpubSpec | None]:
    """The book's manifest entry and (unless placeholders) its EpubSpec, from its own RNG.

    Metadata is drawn before content, so placeholders and real files agree on metadata.
    """
    rng = random.Random(f"{seed}:epub:{book.index}")
    style: Literal["epub2", "epub3"] = "epub2" if rng.random() < 0.6 else "epub3"
    subtitle = None
    if style == "epub3" and rng.random() < 0.2:
        subtitle = _fill(rng.choice(_SUBTITLES), rng)
    first12 = rng.choice(("978", "978", "978", "979")) + f"{rng.randrange(10**9):09d}"
    isbn = first12 + isbn13_check_digit(first12)
    book_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    language = rng.choices(_LANGUAGES, weights=_LANGUAGE_WEIGHTS)[0]
    publisher = rng.choice(_PUBLISHERS)
    year = rng.randint(1950, 2024)
    date = (
        str(year)
        if rng.random() < 0.1
        else f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    )
    description = None
    if rng.random() < 0.9:
        # HTML, as calibre stores it: the EPUB writer escapes it once more for the OPF.
        blurb = _paragraphs()[rng.randrange(_PARAGRAPH_POOL)][:300].rpartition(" ")[0]
        description = (
            f"<p>A {html.escape(book.genres[0].lower())} book by"
            f" <b>{html.escape(book.creators[0].name)}</b>.</p><p>{html.escape(blurb)}…</p>"
        )
    has_cover = rng.random() < 0.98
    entry = ManifestEntry(
        path=book.path,
        kind="epub",
        style=style,
        title=book.title,
        subtitle=subtitle,
        creators=book.creators,
        authors=tuple(c.name for c in book.creators if c.role == "aut"),
        genres=book.genres,
        series=book.series,
        series_index=book.series_index,
        isbn=isbn,
        uuid=book_uuid,
        language=language,
        publisher=publisher,
        date=date,
        description=description,
        has_cover=has_cover,
        chapters=CHAPTERS_PER_BOOK,
        bytes=0,
        mtime=MTIME_EPOCH + book.index,
    )
    if not with_content:
        return entry, None

    bodies = _chapter_bodies(chapter_bytes)
    chapters = []
    for number in range(1, CHAPTERS_PER_BOOK + 1):
        heading = f"Chapter {number}"
        if rng.random() < 0.5:
            heading += f": The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
        chapters.append((heading, bodies[rng.randrange(_CHAPTER_POOL)]))
    cover = cover_jpeg(rng.getrandbits(32), target_bytes=COVER_BYTES) if has_cover else None
    spec = EpubSpec(
        title=book.title,
        creators=book.creators,
        style=style,
        subtitle=subtitle,
        subjects=book.genres,
        series=book.series,
        series_index=book.series_index,
        isbn=isbn,
        uuid=book_uuid,
        language=language,
        publisher=publisher,
        date=date,
        description=description,
        cover=cover,
        chapters=tuple(chapters),
    )
    return entry, spec


# --- audio files -------------------------------------------------------------------------------

_MP3_RATE = 44_100
_MP3_FRAME_SAMPLES = 1_152
_MP3_HEADER = b"\xff\xfb\x10\xc4"  # MPEG-1 Layer III, no CRC, 32 kbps, 44.1 kHz, mono
_MP3_FRAME_BYTES = 104  # 144 * 32000 / 44100, without padding
_MP3_SIDE_INFO = 17  # mono MPEG-1
_AAC_RATE = 22_050
_AAC_FRAME_SAMPLES = 1_024
_AUDIO_COVER = (480, 480)
_AUDIO_COVER_BYTES = 41_000
_AUDIO_CHAPTERS = 5


def _aac_silent_frame() -> bytes:
    """A 4-byte raw AAC-LC frame: one SCE with max_sfb 0 (no spectral data), then END."""
    bits = "000" + "0000"  # ID_SCE, element_instance_tag
    bits += f"{100:08b}"  # global_gain
    bits += "0" + "00" + "0" + "000000" + "0"  # ics_info: long window, max_sfb 0, no predictor
    bits += "000"  # no pulse, tns or gain control data
    bits += "111"  # ID_END
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def _mp3_frames(frames: int) -> bytes:
    """An Info (Xing CBR) frame, then `frames` silent frames (all-zero side info)."""
    info = _MP3_HEADER + bytes(_MP3_SIDE_INFO) + b"Info"
    info += struct.pack(">III", 0x3, frames, (frames + 1) * _MP3_FRAME_BYTES)  # frames, bytes
    info += bytes(_MP3_FRAME_BYTES - len(info))
    silent = _MP3_HEADER + bytes(_MP3_FRAME_BYTES - len(_MP3_HEADER))
    return info + silent * frames


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, bytes([version]) + flags.to_bytes(3, "big"), *payload)


def _descriptor(tag: int, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return bytes([tag, len(body)]) + body  # every descriptor here is under 128 bytes


def _m4b_skeleton(frames: int, chapters: Sequence[tuple[float, str]]) -> bytes:
    """ftyp + moov (one AAC-LC mono track, Nero chpl chapters) + mdat of silent frames."""
    frame = _aac_silent_frame()
    samples = frames * _AAC_FRAME_SAMPLES
    millis = round(samples * 1000 / _AAC_RATE)
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    avg_bitrate = round(len(frame) * 8 * _AAC_RATE / _AAC_FRAME_SAMPLES)
    esds = _full_box(
        b"esds",
        0,
        0,
        _descriptor(
            3,
            struct.pack(">HB", 1, 0),
            _descriptor(
                4,
                bytes([0x40, 0x15]) + (0).to_bytes(3, "big"),
                struct.pack(">II", avg_bitrate, avg_bitrate),
                _descriptor(5, bytes([0x13, 0x88])),  # AAC LC, 22050 Hz, mono
            ),
            _descriptor(6, b"\x02"),
        ),
    )
    mp4a = _box(
        b"mp4a",
        bytes(6) + struct.pack(">H", 1),
        bytes(8) + struct.pack(">HHHHI", 1, 16, 0, 0, _AAC_RATE << 16),
        esds,
    )
    chpl_entries = b"".join(
        struct.pack(">Q", round(start * 10_000_000))
        + bytes([len(title.encode()[:255])])
        + title.encode()[:255]
        for start, title in chapters
    )
    language = sum((ord(c) - 0x60) << shift for c, shift in zip("eng", (10, 5, 0), strict=True))

    def moov(mdat_offset: int) -> bytes:
        stbl = _box(
            b"stbl",
            _full_box(b"stsd", 0, 0, struct.pack(">I", 1), mp4a),
            _full_box(b"stts", 0, 0, struct.pack(">III", 1, frames, _AAC_FRAME_SAMPLES)),
            _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, frames, 1)),
            _full_box(b"stsz", 0, 0, struct.pack(">II", len(frame), frames)),
            _full_box(b"stco", 0, 0, struct.pack(">II", 1, mdat_offset)),
        )
        minf = _box(
            b"minf",
            _full_box(b"smhd", 0, 0, bytes(4)),
            _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1))),
            stbl,
        )
        mdia = _box(
            b"mdia",
            _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, _AAC_RATE, samples, language, 0)),
            _full_box(b"hdlr", 0, 0, bytes(4) + b"soun" + bytes(12) + b"SoundHandler\x00"),
            minf,
        )
        tkhd = _full_box(
            b"tkhd",
            0,
            7,
            struct.pack(">IIIII", 0, 0, 1, 0, millis),
            bytes(8) + struct.pack(">hhhH", 0, 0, 0x0100, 0) + matrix + bytes(8),
        )
        mvhd = _full_box(
            b"mvhd",
            0,
            0,
            struct.pack(">IIIIIH", 0, 0, 1000, millis, 0x10000, 0x0100),
            bytes(10) + matrix + bytes(24) + struct.pack(">I", 2),
        )
        chpl = _full_box(b"chpl", 1, 0, bytes(4), bytes([len(chapters)]), chpl_entries)
        return _box(b"moov", mvhd, _box(b"trak", tkhd, mdia), _box(b"udta", chpl))

    ftyp = _box(b"ftyp", b"M4B ", bytes(4), b"M4B M4A mp42isom")
    header_size = len(ftyp) + len(moov(0)) + 8
    return ftyp + moov(header_size) + _box(b"mdat", frame * frames)


def _audio_meta(item: _PlannedAudio, seed: int) -> tuple[str, str, str, str, int | None]:
    """Book-level audio metadata (shared by all parts): publisher, date, description,
    language and cover seed, from the audiobook's own RNG."""
    rng = random.Random(f"{seed}:audiobook:{item.book}")
    publisher = rng.choice(_PUBLISHERS)
    year = rng.randint(1990, 2024)
    date = (
        str(year)
        if rng.random() < 0.2
        else f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    )
    blurb = _paragraphs()[rng.randrange(_PARAGRAPH_POOL)][:240].rpartition(" ")[0]
    description = f"Read by {' & '.join(item.narrators)}. {blurb}…"
    language = rng.choices(_LANGUAGES, weights=_LANGUAGE_WEIGHTS)[0]
    cover_seed = rng.getrandbits(32) if rng.random() < 0.98 else None
    return publisher, date, description, language, cover_seed


def _realise_audio(
    item: _PlannedAudio, seed: int, audio_seconds: float, with_content: bool
) -> tuple[ManifestEntry, bytes | None]:
    """The file's manifest entry and (unless placeholders) its bytes, tagged by mutagen."""
    rng = random.Random(f"{seed}:audio:{item.index}")
    target = audio_seconds * rng.uniform(0.5, 1.5)
    publisher, date, description, language, cover_seed = _audio_meta(item, seed)
    if item.format == "mp3":
        frames = max(1, round(target * _MP3_RATE / _MP3_FRAME_SAMPLES))
        seconds = frames * _MP3_FRAME_SAMPLES / _MP3_RATE
    else:
        frames = max(1, round(target * _AAC_RATE / _AAC_FRAME_SAMPLES))
        seconds = frames * _AAC_FRAME_SAMPLES / _AAC_RATE
    chapters = (
        [(seconds * k / _AUDIO_CHAPTERS, f"Chapter {k + 1}") for k in range(_AUDIO_CHAPTERS)]
        if item.format == "m4b"
        else []
    )
    entry = ManifestEntry(
        path=item.path,
        kind=item.format,
        style=None,
        title=item.title,
        subtitle=None,
        creators=item.creators,
        authors=tuple(c.name for c in item.creators),
        genres=item.genres,
        series=item.series,
        series_index=item.series_index,
        isbn=None,
        uuid=None,
        language=language,
        publisher=publisher,
        date=date,
        description=description,
        has_cover=cover_seed is not None,
        chapters=len(chapters),
        bytes=0,
        mtime=MTIME_EPOCH + item.index,
        narrators=item.narrators,
        seconds=seconds,
        track=f"{item.part}/{item.parts}" if item.format == "mp3" else None,
    )
    if not with_content:
        return entry, None
    cover = None
    if cover_seed is not None:
        cover = cover_jpeg(cover_seed, size=_AUDIO_COVER, target_bytes=_AUDIO_COVER_BYTES)
    if item.format == "mp3":
        data = _tag_mp3(_mp3_frames(frames), entry, item, cover)
    else:
        data = _tag_m4b(_m4b_skeleton(frames, chapters), entry, cover)
    return entry, data


def _tag_mp3(audio: bytes, entry: ManifestEntry, item: _PlannedAudio, cover: bytes | None) -> bytes:
    """ID3v2.4 the way audiobook taggers write it (several authors in one TPE1)."""
    title = entry.title if item.parts == 1 else f"{entry.title} - Part {item.part}"
    tags = ID3()
    tags.add(TIT2(encoding=3, text=[title]))
    tags.add(TALB(encoding=3, text=[entry.title]))
    tags.add(TPE1(encoding=3, text=list(entry.authors)))
    tags.add(TPE2(encoding=3, text=[entry.authors[0]]))
    tags.add(TXXX(encoding=3, desc="NARRATOR", text=list(entry.narrators)))
    if entry.series:
        tags.add(TXXX(encoding=3, desc="SERIES", text=[entry.series]))
        if entry.series_index:
            tags.add(TXXX(encoding=3, desc="SERIES-PART", text=[entry.series_index]))
    tags.add(TCON(encoding=3, text=list(entry.genres)))
    tags.add(TDRC(encoding=3, text=[entry.date or ""]))
    tags.add(TPUB(encoding=3, text=[entry.publisher or ""]))
    tags.add(TRCK(encoding=3, text=[entry.track or "1/1"]))
    tags.add(COMM(encoding=3, lang="eng", desc="", text=[entry.description or ""]))
    if cover is not None:
        tags.add(
            APIC(encoding=3, mime="image/jpeg", type=PictureType.COVER_FRONT, desc="", data=cover)
        )
    buffer = io.BytesIO(audio)
    tags.save(buffer, v1=0, v2_version=4)
    return buffer.getvalue()


def _tag_m4b(skeleton: bytes, entry: ManifestEntry, cover: bytes | None) -> bytes:
    """iTunes atoms as audiobook tools write them, plus freeform NARRATOR/SERIES atoms."""
    buffer = io.BytesIO(skeleton)
    mp4 = MP4(buffer)
    mp4.add_tags()
    tags = mp4.tags
    assert tags is not None

    def freeform(name: str, *values: str) -> None:
        tags[f"----:com.apple.iTunes:{name}"] = [
            MP4FreeForm(v.encode(), dataformat=AtomDataType.UTF8) for v in values
        ]

    tags["\xa9nam"] = [entry.title]
    tags["\xa9alb"] = [entry.title]
    tags["\xa9ART"] = list(entry.authors)
    tags["aART"] = [entry.authors[0]]
    tags["\xa9wrt"] = list(entry.narrators)
    tags["\xa9gen"] = list(entry.genres)
    tags["\xa9day"] = [entry.date or ""]
    tags["desc"] = [entry.description or ""]
    if cover is not None:
        tags["covr"] = [MP4Cover(cover, imageformat=MP4Cover.FORMAT_JPEG)]
    freeform("NARRATOR", *entry.narrators)
    freeform("PUBLISHER", entry.publisher or "")
    if entry.series:
        freeform("SERIES", entry.series)
        if entry.series_index:
            freeform("SERIES-PART", entry.series_index)
    buffer.seek(0)
    mp4.save(buffer)
    return buffer.getvalue()


def _write_chunk(chunk: _Chunk) -> tuple[list[str], int]:
    """Write a batch of files (worker entry point); returns their manifest lines in order
    and the bytes written.

    Folders are made here rather than up front by the parent: each folder costs a
    filesystem round trip (0.05-1 ms on the project's VMs), which then overlaps across
    worker processes. (I/O threads inside a worker were tried and measured slower.)"""
    root = Path(chunk.root)
    lines = []
    written = 0
    made: set[Path] = set()
    content = not chunk.placeholders
    for item in chunk.items:
        if isinstance(item, _PlannedBook):
            entry, spec = _realise(item, chunk.seed, chunk.chapter_bytes, content)
            data = b"" if spec is None else epub_bytes(spec)
        else:
            entry, audio = _realise_audio(item, chunk.seed, chunk.audio_seconds, content)
            data = audio or b""
        target = root / item.path
        if target.parent not in made:
            target.parent.mkdir(parents=True, exist_ok=True)  # another worker may race us
            made.add(target.parent)
        with open(target, "xb") as handle:
            handle.write(data)
        os.utime(target, (entry.mtime, entry.mtime))
        lines.append(replace(entry, bytes=len(data)).to_json())
        written += len(data)
    return lines, written


# --- public API --------------------------------------------------------------------------------


def generate_library(
    out: Path,
    *,
    books: int,
    seed: int = 1,
    audio: int = 0,
    layout: str = "abs",
    placeholders: bool = False,
    jobs: int = 1,
    chapter_bytes: int = 20_000,
    audio_seconds: float = 30.0,
) -> LibraryManifest:
    """Write a synthetic library into `out` (absent or empty) and return its manifest.

    `books` EPUBs and `audio` audiobooks (an M4B, or an MP3 in 1-3 part files, each
    about `audio_seconds` long, ×0.5-1.5). The same arguments give byte-identical
    files, names and mtimes for any `jobs`.
    """
    if layout not in ("abs", "flat"):
        raise ValueError(f"layout must be 'abs' or 'flat', not {layout!r}")
    if books < 0 or audio < 0 or jobs < 1 or chapter_bytes < 0 or audio_seconds <= 0:
        raise ValueError("counts and chapter_bytes must be >= 0, jobs >= 1, audio_seconds > 0")
    if audio and not books:
        raise ValueError("audiobooks are by library authors: ask for at least one book")
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; generate into a new folder")

    ebooks, audio_files = _plan(books, seed, "flat" if layout == "flat" else "abs", audio)
    plan: list[_PlannedBook | _PlannedAudio] = [*ebooks, *audio_files]

    size = max(25, min(500, -(-len(plan) // (jobs * 8)) if plan else 25))
    chunks = [
        _Chunk(
            str(out),
            seed,
            tuple(plan[i : i + size]),
            placeholders,
            chapter_bytes,
            audio_seconds,
        )
        for i in range(0, len(plan), size)
    ]
    total = 0
    with (out / MANIFEST_NAME).open("w", encoding="utf-8", newline="\n") as manifest:
        if jobs == 1 or len(chunks) <= 1:
            results: Iterator[tuple[list[str], int]] = map(_write_chunk, chunks)
            total = _drain(results, manifest)
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                total = _drain(pool.map(_write_chunk, chunks), manifest)
    os.utime(out / MANIFEST_NAME, (MTIME_EPOCH, MTIME_EPOCH))
    _fix_folder_mtimes(out, [item.path for item in plan])
    return LibraryManifest(out, books=len(ebooks), audio=audio, files=len(plan), total_bytes=total)


def _drain(results: Iterator[tuple[list[str], int]], manifest: TextIO) -> int:
    """Write manifest lines in plan order as chunks complete; returns the bytes written."""
    total = 0
    for lines, written in results:
        manifest.writelines(line + "\n" for line in lines)
        total += written
    return total


def _root_mtime(files: int) -> int:
    """The mtime `_fix_folder_mtimes` gives the root folder."""
    return MTIME_EPOCH + max(0, files - 1)


def _fix_folder_mtimes(out: Path, files: Sequence[str]) -> None:
    """Each folder gets the newest mtime of the files below it (the root: at least EPOCH).

    Runs last, since creating entries in a folder bumps its mtime."""
    newest: dict[str, int] = {"": MTIME_EPOCH}
    for index, path in enumerate(files):
        mtime = MTIME_EPOCH + index
        parent = path.rpartition("/")[0]
        while parent:
            if newest.get(parent, -1) < mtime:
                newest[parent] = mtime
            parent = parent.rpartition("/")[0]
        newest[""] = max(newest[""], mtime)
    for folder, mtime in newest.items():
        os.utime(out / folder if folder else out, (mtime, mtime))


def generate_library_cached(
    cache_root: Path,
    *,
    books: int,
    seed: int = 1,
    audio: int = 0,
    layout: str = "abs",
    placeholders: bool = False,
    jobs: int = 1,
    chapter_bytes: int = 20_000,
    audio_seconds: float = 30.0,
) -> Path:
    """A library for these parameters under `cache_root`, generated only when missing.

    The folder name hashes the parameters and GENERATOR_VERSION (`jobs` does not change
    the output, so it is not part of the key). Generation happens in a temporary
    folder that is renamed into place, so a reader never sees a half-built library.
    """
    params: dict[str, object] = {
        "books": books,
        "seed": seed,
        "audio": audio,
        "layout": layout,
        "placeholders": placeholders,
        "chapter_bytes": chapter_bytes,
        "audio_seconds": audio_seconds,
        "version": GENERATOR_VERSION,
    }
    key = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
    final = cache_root / f"library-{key}"
    if (final / COMPLETE_MARKER).is_file():
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    temp = cache_root / f".tmp-{key}-{os.getpid()}-{time.monotonic_ns()}"
    try:
        result = generate_library(
            temp,
            books=books,
            seed=seed,
            audio=audio,
            layout=layout,
            placeholders=placeholders,
            jobs=jobs,
            chapter_bytes=chapter_bytes,
            audio_seconds=audio_seconds,
        )
        marker = temp / COMPLETE_MARKER
        marker.write_text(json.dumps(params, sort_keys=True) + "\n", encoding="utf-8")
        os.utime(marker, (MTIME_EPOCH, MTIME_EPOCH))
        root_mtime = _root_mtime(result.files)
        if final.exists() and not (final / COMPLETE_MARKER).is_file():
            shutil.rmtree(final)  # a stale folder from an older, non-atomic writer
        try:
            os.rename(temp, final)
        except OSError:
            if not (final / COMPLETE_MARKER).is_file():
                raise
            return final  # another process finished first; ours is removed below
        os.utime(final, (root_mtime, root_mtime))
        return final
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


# --- CLI ---------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; prints a one-line summary."""
    parser = argparse.ArgumentParser(
        prog="python -m shelfscan.testing.library",
        description="Generate a deterministic synthetic ebook library with manifest.jsonl.",
    )
    parser.add_argument("--books", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--audio", type=int, default=0)
    parser.add_argument("--layout", choices=("abs", "flat"), default="abs")
    parser.add_argument("--placeholders", action="store_true")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--chapter-bytes", type=int, default=20_000)
    parser.add_argument("--audio-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    result = generate_library(
        args.out,
        books=args.books,
        seed=args.seed,
        audio=args.audio,
        layout=args.layout,
        placeholders=args.placeholders,
        jobs=args.jobs,
        chapter_bytes=args.chapter_bytes,
        audio_seconds=args.audio_seconds,
    )
    elapsed = time.perf_counter() - started
    mean = result.total_bytes / result.files if result.files else 0.0
    print(
        f"{result.files} files, {result.total_bytes:,} bytes (mean {mean:,.0f}) "
        f"in {elapsed:.2f} s -> {result.root}",
        file=sys.stdout,
    )
    return 0


if __name__ == "__main__":
    # Re-import under the package name so worker processes can unpickle `_write_chunk`.
    from shelfscan.testing.library import main as _package_main

    raise SystemExit(_package_main())

"""Normalised keys, display forms and sort forms for names and titles.

Two spellings that differ only in case, Unicode composition or spacing are the
same entity; the key decides that, the first spelling seen is displayed. People
get a richer key (`person_key`) because the same author arrives as "Tolkien,
J.R.R." from an OPF file-as, "J. R. R. Tolkien" from a tag and "J.R.R. Tolkien"
from a folder name. Everything here is called per book, so it stays cheap:
no caches, only string methods and a few precompiled patterns.
"""

from __future__ import annotations

import re
import unicodedata
from types import MappingProxyType

__all__ = [
    "collapse",
    "is_cjk",
    "is_name_particle",
    "is_name_suffix",
    "name_key",
    "person_display",
    "person_key",
    "person_sort_name",
    "sort_title",
]

_SPACES = re.compile(r"\s+")
# A dot glued to the next letter ("J.R.R.Tolkien"): split so initials tokenise alike.
_DOT_GLUED = re.compile(r"\.(?=\w)")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})

# Leading articles by language (ISO 639-1); "en" also serves unknown languages.
_ARTICLES: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        "en": frozenset({"the", "a", "an"}),
        "fr": frozenset({"le", "la", "les", "un", "une"}),
        "de": frozenset({"der", "die", "das", "ein", "eine"}),
        "es": frozenset({"el", "la", "los", "las", "un", "una"}),
        "it": frozenset({"il", "lo", "la", "i", "gli", "le", "un", "uno", "una"}),
        "nl": frozenset({"de", "het", "een", "'t"}),
        "pt": frozenset({"o", "a", "os", "as", "um", "uma"}),
        "sv": frozenset({"en", "ett", "den", "det", "de"}),
        "da": frozenset({"en", "et", "den", "det", "de"}),
        "no": frozenset({"en", "et", "ei", "den", "det", "de"}),
    }
)
# Elided articles glued to the next word ("L'Étranger"), keyed like _ARTICLES.
_ELISIONS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {"fr": frozenset({"l'"}), "it": frozenset({"l'", "un'"})}
)
# ISO 639-2 (bibliographic and terminology) and Norwegian variants we map onto the table.
_LANGUAGE_ALIASES: MappingProxyType[str, str] = MappingProxyType(
    {
        "eng": "en", "fre": "fr", "fra": "fr", "ger": "de", "deu": "de", "spa": "es",
        "ita": "it", "dut": "nl", "nld": "nl", "por": "pt", "swe": "sv", "dan": "da",
        "nor": "no", "nob": "no", "nno": "no", "nb": "no", "nn": "no",
    }
)  # fmt: skip
_QUOTE_CHARS = "'\"‘’‚‛“”„‟«»‹›「」『』"
_QUOTES = frozenset(_QUOTE_CHARS)

# Surname particles that, written in lower case, stay with the given names when
# sorting (Dutch/German style: "Beethoven, Ludwig van").
_PARTICLES = frozenset(
    {
        "van", "von", "de", "der", "den", "du", "la", "le", "da", "di", "del", "della",
        "dei", "degli", "des", "dos", "das", "do", "ten", "ter", "te", "'t", "zu", "zum",
        "zur", "vom", "af", "av", "op", "al", "el", "bin", "ibn",
    }
)  # fmt: skip
# Generational and academic suffixes, compared lower-case without dots (calibre's default
# author_name_suffixes, plus a few British forms).
_SUFFIXES = frozenset(
    {"jr", "jnr", "junior", "sr", "snr", "senior", "i", "ii", "iii", "iv", "phd", "md", "esq",
     "dds"}
)  # fmt: skip
# Titles before a name, dropped from the sort form (calibre's default author_name_prefixes).
_PREFIXES = frozenset({"mr", "mrs", "ms", "dr", "prof"})
# Bracketed text in a name is a note ("Seventh Author [7]", "John [x]von Neumann (III)").
_BRACKETED = re.compile(r"\[[^\[\]]*\]|\([^()]*\)|\{[^{}]*\}")
# Words that make a string an organisation or a list of people, never one person.
_NOT_A_PERSON = frozenset(
    {
        "and", "&", "und", "inc", "ltd", "llc", "llp", "plc", "corp", "corporation",
        "company", "press", "publishing", "publishers", "publisher", "publications",
        "books", "editions", "verlag", "gmbh", "university", "college", "society",
        "association", "institute", "foundation", "council", "committee", "department",
        "ministry", "museum", "library", "group", "studio", "studios", "team", "staff",
        "editors", "magazine", "media", "entertainment", "comics", "games",
        # calibre's default author_name_copywords
        "agency", "co", "club", "national", "software",
    }
)  # fmt: skip
_WORD_EDGE_PUNCT = ".,;:()[]"


def collapse(text: str) -> str:
    """NFC with whitespace runs made single spaces: the stored spelling of a name."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def name_key(name: str) -> str:
    """NFC + casefold + collapsed whitespace: the identity of a name within a library."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", name).casefold()).strip()


def _language(language: str | None) -> str:
    if not language:
        return "en"
    code = language.strip().lower().replace("_", "-").partition("-")[0]
    code = _LANGUAGE_ALIASES.get(code, code)
    return code if code in _ARTICLES else "en"


def _strip_leading_punctuation(title: str) -> str:
    """Drop leading quotes and punctuation ('"Salem's Lot", "...And Then") for sorting."""
    start = 0
    while start < len(title) and (
        title[start] == " " or unicodedata.category(title[start]).startswith("P")
    ):
        start += 1
    if start == 0 or start == len(title):
        return title
    stripped = title[start:]
    if any(ch in _QUOTES for ch in title[:start]):
        stripped = stripped.rstrip(_QUOTE_CHARS).rstrip() or stripped
    return stripped


def _move_article(text: str, lang: str) -> str | None:
    first, _, rest = text.partition(" ")
    if rest and first.lower() in _ARTICLES[lang]:
        return f"{rest}, {first}"
    elisions = _ELISIONS.get(lang)
    if elisions is not None:
        for cut in (2, 3):
            if len(text) > cut and text[cut - 1] in "'’":
                if text[:cut].lower().replace("’", "'") in elisions:
                    return f"{text[cut:]}, {text[:cut]}"
                break
    return None


def sort_title(title: str, language: str | None = None) -> str:
    """Sort form of a title: leading punctuation dropped, article moved behind.

    "The Hobbit" -> "Hobbit, The", "L'Étranger" (fr) -> "Étranger, L'". The
    article table is chosen by the book's language (ISO 639-1 or 639-2, with
    region suffixes); unknown languages use English articles.
    """
    text = collapse(title)
    lang = _language(language)
    moved = _move_article(text, lang)
    if moved is not None:
        return moved
    if text and not text[0].isalnum():
        text = _strip_leading_punctuation(text)
        moved = _move_article(text, lang)
    return text if moved is None else moved


def _bare(word: str) -> str:
    return word.strip(_WORD_EDGE_PUNCT).lower().replace(".", "")


def _is_suffix(text: str) -> bool:
    return _bare(text) in _SUFFIXES


def is_name_suffix(word: str) -> bool:
    """A generational or academic suffix ("Jr.", "III", "PhD"), case and dots ignored."""
    return _is_suffix(word)


def is_name_particle(word: str) -> bool:
    """A surname particle ("van", "von", "de", "da", "le"...), compared lower-case."""
    return word.lower() in _PARTICLES


def _not_a_person(text: str) -> bool:
    """Organisations and lists of people must never be flipped around a comma."""
    if any(ch.isdigit() or ch in "&/+@" for ch in text) or "et al" in text.lower():
        return True
    return any(_bare(word) in _NOT_A_PERSON for word in text.split(" "))


def person_display(name: str) -> str:
    """Reading order for a person: "Tolkien, J.R.R." -> "J.R.R. Tolkien".

    Handles "Last, First", "Last, First, Jr." and "First Last, Jr."; a name
    without a comma is only collapsed. Organisation-like strings, lists, names
    with more than two commas or with an empty part stay as written, and so does
    an ambiguous "Smith, Jr.".
    """
    text = collapse(name)
    if "," not in text:
        return text
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > 3 or not all(parts) or _not_a_person(text):
        return text
    if len(parts) == 2:
        last, first = parts
        if _is_suffix(first):
            # "Martin Luther King, Jr." is display order already; "Smith, Jr." is ambiguous.
            return f"{last} {first}" if " " in last else text
        if _is_suffix(last):
            return text
        given, _, tail = first.rpartition(" ")
        if given and _is_suffix(tail):  # "Smith, John Jr." -> "John Smith Jr."
            return f"{given} {last} {tail}"
        return f"{first} {last}"
    last, first, suffix = parts
    if not _is_suffix(suffix) or _is_suffix(first) or _is_suffix(last):
        return text
    return f"{first} {last} {suffix}"


def person_key(name: str) -> str:
    """Identity of a person: display form, NFC, casefolded, initials spaced one way.

    "Tolkien, J.R.R.", "J. R. R. Tolkien" and "J R R Tolkien" all give
    "j.r.r. tolkien": a run of single-letter initials is written dotted and
    unspaced, followed by one space. Typographic apostrophes count as "'".
    """
    text = person_display(name).casefold()
    if not text.isascii():
        text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES)
    if "." in text:
        text = _DOT_GLUED.sub(". ", text)
    out: list[str] = []
    initials = ""
    for token in text.split():
        core = token[:-1] if token.endswith(".") else token
        if len(core) == 1 and core.upper() != core:  # a single cased letter
            initials += core + "."
            continue
        if initials:
            out.append(initials)
            initials = ""
        out.append(token)
    if initials:
        out.append(initials)
    return " ".join(out)


def is_cjk(text: str) -> bool:
    """Written in a script whose names put the family name first (Han, kana, Hangul)."""
    for ch in text:
        if ch.isalpha():
            return unicodedata.name(ch, "").startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL"))
    return False


def _without_brackets(text: str) -> str:
    for _ in range(3):
        text, count = _BRACKETED.subn(" ", text)
        if not count:
            break
    return " ".join(text.split())


def _sort_from_display(text: str) -> str:
    words = text.split(" ")
    if len(words) < 2 or _not_a_person(text) or is_cjk(text):
        return text
    first = 0
    while first < len(words) and _bare(words[first]) in _PREFIXES:
        first += 1
    last = len(words) - 1
    while last >= first and _is_suffix(words[last]):
        last -= 1
    if first >= len(words) or last < first:
        return text  # only titles or only suffixes ("Mr. Dr Prof.", "Senior Inc")
    suffix = " ".join(w.rstrip(",") for w in words[last + 1 :])
    words = [w.rstrip(",") for w in words[first : last + 1]]
    # Case tells "Ludwig van Beethoven" (particle joins the given names, calibre's default)
    # from "Ursula K. Le Guin" (a capitalised particle is part of the surname, as calibre's
    # author_use_surname_prefixes does); a name written in one case carries no such signal.
    single_case = text == text.lower() or text == text.upper()
    start = len(words) - 1
    while start > 1 and words[start - 1].lower() in _PARTICLES:
        start -= 1
    particles = words[start:-1]
    if particles and not single_case and particles[0] != particles[0].lower():
        surname, given = " ".join(words[start:]), " ".join(words[:start])
    else:
        surname, given = words[-1], " ".join(words[:-1])
    result = f"{surname}, {given}" if given else surname
    return f"{result} {suffix}" if suffix else result


def person_sort_name(name: str) -> str:
    """Library sort form "Last, First Middle" as calibre's default author_sort gives it.

    "J.R.R. Tolkien" -> "Tolkien, J.R.R."; "Mrs. Jane Q. Doe III" -> "Doe, Jane Q. III"
    (titles dropped, suffixes kept at the end); "Seventh Author [7]" -> "Author, Seventh"
    (bracketed notes dropped); "Ludwig van Beethoven" -> "Beethoven, Ludwig van"; "Ursula K.
    Le Guin" -> "Le Guin, Ursula K." (a capitalised particle belongs to the surname).
    Single words, organisations and names with a copy word ("National Lampoon", "Acme Inc.",
    "Studio Ghibli"), CJK names (family name already first) and names already holding a comma
    ("Tolkien, J.R.R.") are returned as written; "Martin Luther King, Jr." is read as a
    name with its suffix.
    """
    text = collapse(name)
    if any(ch in text for ch in "([{"):
        text = _without_brackets(text) or text
    if "," in text:
        parts = [part.strip() for part in text.split(",")]
        if (
            len(parts) == 2
            and all(parts)
            and _is_suffix(parts[1])
            and " " in parts[0]
            and not _not_a_person(text)
        ):
            return _sort_from_display(f"{parts[0]} {parts[1]}")
        return text
    return _sort_from_display(text)

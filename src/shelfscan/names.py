"""Normalised keys and sort forms for names and titles.

Two spellings that differ only in case, Unicode composition or spacing are the
same entity; the key decides that, the first spelling seen is displayed.
"""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")

# Leading articles by language (ISO 639-1); "en" also serves books of unknown language.
_ARTICLES: dict[str, tuple[str, ...]] = {
    "en": ("the", "a", "an"),
    "fr": ("le", "la", "les", "l'", "un", "une"),
    "de": ("der", "die", "das", "ein", "eine"),
    "es": ("el", "la", "los", "las", "un", "una"),
    "it": ("il", "lo", "la", "i", "gli", "le", "l'", "un", "una"),
    "nl": ("de", "het", "een"),
    "pt": ("o", "a", "os", "as", "um", "uma"),
}


def collapse(text: str) -> str:
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()


def name_key(name: str) -> str:
    """NFC + casefold + collapsed whitespace: the identity of a name within a library."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", name).casefold()).strip()


def sort_title(title: str, language: str | None = None) -> str:
    """Move a leading article behind the title ("The Road" -> "Road, The")."""
    title = collapse(title)
    lang = (language or "en").split("-")[0].lower()
    lowered = title.lower()
    for article in _ARTICLES.get(lang, _ARTICLES["en"]):
        if article.endswith("'"):
            if lowered.startswith(article) and len(title) > len(article):
                return f"{title[len(article) :]}, {title[: len(article)]}"
        elif lowered.startswith(article + " ") and len(title) > len(article) + 1:
            return f"{title[len(article) + 1 :]}, {title[: len(article)]}"
    return title


def person_sort_name(name: str) -> str:
    """ "J.R.R. Tolkien" -> "Tolkien, J.R.R."; a name already in "Last, First" form stays."""
    name = collapse(name)
    if "," in name or " " not in name:
        return name
    first, _, last = name.rpartition(" ")
    return f"{last}, {first}"

"""Author lists in folder names: one folder, several people.

Conventions (Audiobookshelf's name-string parser tests, calibre's author splitting):
`A & B`, `A and B`, `A; B`, `A, B` (each piece a full name), `Last, First, Last, First`
(pairs: "Kishimi, Ichiro, Koga, Fumitake" is two people), mixed lists where some pieces are
single names (`John Smith, Jones, James Doe`: three people),
and CJK names, which never take the "Last, First" form and are kept in their written order
(`张三, 李四` is 张三 and 李四). A generational suffix piece ("Jr.") stays with its person.

Each person is returned as written ("Kishimi, Ichiro"): `shelfscan.names.person_display`
gives the reading order and the written form is a good sort name.
"""

from __future__ import annotations

import re

from shelfscan.names import is_cjk, is_name_particle, is_name_suffix

__all__ = ["split_authors"]

_LIST_SPLIT_RE = re.compile(r"\s*(?:;|；|&|＆|\+|\band\b|\bund\b|、|，)\s*", re.I)


def _is_surname(piece: str) -> bool:
    """Could this piece be the surname half of "Last, First"? One word, or particles + word."""
    words = piece.split()
    if len(words) == 1:
        return True
    return all(is_name_particle(w) for w in words[:-1])


def _is_given(piece: str) -> bool:
    """Could this piece be the given-names half of "Last, First"? At most three words."""
    return 1 <= len(piece.split()) <= 3


def _pairs(pieces: list[str]) -> list[str] | None:
    """Read `pieces` as "Last, First" pairs when every pair fits; None when they do not."""
    if len(pieces) % 2:
        return None
    people = []
    for index in range(0, len(pieces), 2):
        last, first = pieces[index], pieces[index + 1]
        if not (_is_surname(last) and _is_given(first)) or is_name_suffix(last):
            return None
        people.append(f"{last}, {first}")
    return people


def _comma_list(text: str) -> list[str]:
    pieces = [p.strip() for p in text.split(",")]
    pieces = [p for p in pieces if p]
    if len(pieces) <= 1:
        return pieces
    if any(is_cjk(p) for p in pieces):
        return pieces
    # Suffix pieces belong to the person before them ("King, Martin Luther, Jr.").
    if len(pieces) == 2 and is_name_suffix(pieces[1]):
        return [f"{pieces[0]}, {pieces[1]}"]
    if len(pieces) == 3 and is_name_suffix(pieces[2]) and _pairs(pieces[:2]):
        return [", ".join(pieces)]
    if len(pieces) == 2 and len(pieces[1].split()) == 1 and len(pieces[0].split()) <= 3:
        return [f"{pieces[0]}, {pieces[1]}"]  # "García Márquez, Gabriel": a two-word surname
    paired = _pairs(pieces)
    if paired is not None:
        return paired
    return pieces


def split_authors(text: str) -> tuple[str, ...]:
    """The people a folder or tag names, each as written, duplicates dropped, order kept."""
    people: list[str] = []
    for chunk in _LIST_SPLIT_RE.split(text):
        chunk = " ".join(chunk.split()).strip(" ,")
        if chunk:
            people.extend(_comma_list(chunk))
    seen: set[str] = set()
    out = []
    for person in people:
        key = person.casefold()
        if key not in seen:
            seen.add(key)
            out.append(person)
    return tuple(out)

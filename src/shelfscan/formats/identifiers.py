"""Identifier normalisation: ISBN, ASIN, UUID and free-form scheme identifiers.

Identifiers are how books are matched across files and sources, so a bad value
is worse than none: ISBNs are checksum-validated and dropped when wrong.
"""

from __future__ import annotations

import re
import uuid

from shelfscan.formats.records import Identifier

__all__ = [
    "classify_identifier",
    "is_valid_isbn10",
    "is_valid_isbn13",
    "isbn10_to_isbn13",
    "normalise_asin",
    "normalise_isbn",
    "normalise_uuid",
]

_ISBN_SCHEMES = frozenset({"isbn", "isbn10", "isbn-10", "isbn13", "isbn-13", "isbn_10", "isbn_13"})
_ASIN_SCHEMES = frozenset({"asin", "mobi-asin", "amazon", "amazon_asin", "amzn"})
_UUID_SCHEMES = frozenset({"uuid", "urn:uuid"})
_AMAZON_URNS = ("urn:amazon:asin:", "urn:amazon:", "urn:asin:")
# Schemes that say nothing about the value, so a self-describing prefix may decide.
_GENERIC_SCHEMES = frozenset({"", "urn", "uri", "url", "xsd:string", "dcterms:uri"})
# calibre writes EPUB 3 identifiers as "type:value" text with no scheme attribute.
_TEXT_PREFIXES = frozenset(
    {"isbn", "uuid", "calibre", "google", "goodreads", "amazon", "asin", "mobi-asin", "uri", "doi"}
)
_PREFIX_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*):(.+)$", re.DOTALL)
_ISBN_JUNK_RE = re.compile(r"[\s\-‐‑‒–—]+")
_ISBN_LABEL_RE = re.compile(r"^(?:urn:isbn:|isbn(?:-1[03])?:?\s*)", re.IGNORECASE)
_ASIN_RE = re.compile(r"^B0[0-9A-Z]{8}$")
_URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S")


def is_valid_isbn10(digits: str) -> bool:
    """Check an already-normalised 10-character ISBN (digits, last may be X)."""
    if (
        len(digits) != 10
        or not digits[:9].isdigit()
        or not (digits[9].isdigit() or digits[9] == "X")
    ):
        return False
    total = sum((10 - i) * int(c) for i, c in enumerate(digits[:9]))
    total += 10 if digits[9] == "X" else int(digits[9])
    return total % 11 == 0


def is_valid_isbn13(digits: str) -> bool:
    """Check an already-normalised 13-digit ISBN (EAN-13 with a 978/979 prefix)."""
    if len(digits) != 13 or not digits.isascii() or not digits.isdigit():
        return False
    if not digits.startswith(("978", "979")):
        return False
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(digits))
    return total % 10 == 0


def isbn10_to_isbn13(isbn10: str) -> str:
    """Convert a valid ISBN-10 to its ISBN-13 so one book has one matching key."""
    core = "978" + isbn10[:9]
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(core))
    return core + str((10 - total % 10) % 10)


def normalise_isbn(value: str) -> str | None:
    """Return a valid bare ISBN-10 or ISBN-13, or None when the value is not one."""
    text = _ISBN_LABEL_RE.sub("", value.strip())
    text = _ISBN_JUNK_RE.sub("", text).upper()
    if not text.isascii():
        return None
    if len(text) == 13 and is_valid_isbn13(text):
        return text
    if len(text) == 10 and is_valid_isbn10(text):
        return text
    return None


def normalise_asin(value: str, *, allow_isbn10: bool) -> str | None:
    """Return an ASIN; an ISBN-10 only counts when the source said it is an ASIN."""
    text = value.strip().upper()
    if _ASIN_RE.match(text):
        return text
    if allow_isbn10:
        isbn = normalise_isbn(text)
        if isbn is not None and len(isbn) == 10:
            return isbn
    return None


def normalise_uuid(value: str) -> str | None:
    """Return the canonical lower-case UUID, accepting urn:uuid:/uuid: prefixes and braces."""
    text = value.strip()
    lowered = text.lower()
    for prefix in ("urn:uuid:", "uuid:"):
        if lowered.startswith(prefix):
            text = text[len(prefix) :]
            break
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        return None


def _isbn_records(value: str) -> tuple[Identifier, ...]:
    isbn = normalise_isbn(value)
    if isbn is None:
        return ()
    if len(isbn) == 13:
        return (Identifier("isbn_13", isbn),)
    return (Identifier("isbn_10", isbn), Identifier("isbn_13", isbn10_to_isbn13(isbn)))


def _by_scheme(value: str, scheme: str) -> tuple[Identifier, ...]:
    if scheme in _ISBN_SCHEMES:
        return _isbn_records(value)
    if scheme in _ASIN_SCHEMES:
        asin = normalise_asin(value, allow_isbn10=True)
        return (Identifier("asin", asin),) if asin else ()
    if scheme in _UUID_SCHEMES:
        uid = normalise_uuid(value)
        return (Identifier("uuid", uid),) if uid else ()
    return (Identifier(scheme, value),)


def classify_identifier(value: str, scheme: str | None) -> tuple[Identifier, ...]:
    """Turn one raw identifier into normalised records; garbage yields an empty tuple.

    An ISBN-10 also yields its ISBN-13, because ISBN-13 is the matching key.
    Identifiers with neither a scheme nor a recognisable shape become type
    "uri" (when they look like one) or "unknown".
    """
    text = " ".join(value.split())
    if not text:
        return ()
    lowered = text.lower()
    # Self-describing URNs beat whatever a scheme attribute or refinement claims.
    if lowered.startswith("urn:isbn:"):
        return _isbn_records(text)
    if lowered.startswith("urn:uuid:"):
        uid = normalise_uuid(text)
        return (Identifier("uuid", uid),) if uid else ()
    for prefix in _AMAZON_URNS:
        if lowered.startswith(prefix):
            # calibre and Kindle tools write "urn:amazon:B00..."; the value is the ASIN.
            return _by_scheme(text[len(prefix) :].strip(), "asin")

    key = " ".join(scheme.split()).lower() if scheme else ""
    if key and key not in _GENERIC_SCHEMES:
        return _by_scheme(text, key)

    match = _PREFIX_RE.match(text)
    if match and match.group(1).lower() in _TEXT_PREFIXES:
        prefix, rest = match.group(1).lower(), match.group(2).strip()
        if not rest:
            return ()
        return _by_scheme(rest, prefix)

    if any(ch.isdigit() for ch in text) and len(text) <= 24:
        isbn = _isbn_records(text)
        if isbn:
            return isbn
    uid = normalise_uuid(text) if len(text) in (32, 36, 38) else None
    if uid is not None:
        return (Identifier("uuid", uid),)
    if _ASIN_RE.match(text):
        return (Identifier("asin", text),)
    if key:
        return (Identifier(key, text),)
    if _URI_RE.match(text):
        return (Identifier("uri", text),)
    return (Identifier("unknown", text),)

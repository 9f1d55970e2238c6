"""ISBN/ASIN/UUID normalisation: valid values are canonical, invalid ones are dropped."""

from __future__ import annotations

import pytest

from shelfscan.formats.identifiers import (
    classify_identifier,
    is_valid_isbn10,
    is_valid_isbn13,
    isbn10_to_isbn13,
    normalise_asin,
    normalise_isbn,
    normalise_uuid,
)
from shelfscan.formats.records import Identifier


@pytest.mark.parametrize(
    ("isbn10", "isbn13"),
    [
        ("0306406152", "9780306406157"),
        ("080442957X", "9780804429573"),
        ("0131103628", "9780131103627"),
        ("0596520689", "9780596520687"),
    ],
)
def test_isbn10_checksum_and_conversion(isbn10: str, isbn13: str) -> None:
    assert is_valid_isbn10(isbn10)
    assert is_valid_isbn13(isbn13)
    assert isbn10_to_isbn13(isbn10) == isbn13


@pytest.mark.parametrize("bad", ["0306406153", "080442957Y", "X306406152", "030640615", ""])
def test_isbn10_invalid(bad: str) -> None:
    assert not is_valid_isbn10(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "9780306406158",
        "1234567890128",
        "978030640615",
        "978030640615X",
        "９７８０３０６４０６１５７",
    ],
)
def test_isbn13_invalid(bad: str) -> None:
    assert not is_valid_isbn13(bad)


def test_isbn13_rejects_non_bookland_prefix() -> None:
    # A valid EAN-13 that is not an ISBN (no 978/979 prefix).
    assert not is_valid_isbn13("4006381333931")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("urn:isbn:978-0-306-40615-7", "9780306406157"),
        ("URN:ISBN:0-306-40615-2", "0306406152"),
        ("978 0 306 40615 7", "9780306406157"),
        ("ISBN 0-8044-2957-x", "080442957X"),
        ("ISBN-13: 979-10-90636-07-1", "9791090636071"),
        ("978–0–306–40615–7", "9780306406157"),
        ("9780306406158", None),
        ("not an isbn", None),
        ("", None),
    ],
)
def test_normalise_isbn(raw: str, expected: str | None) -> None:
    assert normalise_isbn(raw) == expected


def test_asin_rules() -> None:
    assert normalise_asin("B00TEST123", allow_isbn10=False) == "B00TEST123"
    assert normalise_asin(" b0abcdefgh ", allow_isbn10=False) == "B0ABCDEFGH"
    assert normalise_asin("0306406152", allow_isbn10=False) is None
    assert normalise_asin("0306406152", allow_isbn10=True) == "0306406152"
    assert normalise_asin("0306406153", allow_isbn10=True) is None
    assert normalise_asin("B1ABCDEFGH", allow_isbn10=True) is None
    assert normalise_asin("B0ABC", allow_isbn10=True) is None


def test_normalise_uuid() -> None:
    canonical = "12c1df3e-df35-4fcf-918b-643ff15a7870"
    assert normalise_uuid("urn:uuid:12C1DF3E-DF35-4FCF-918B-643FF15A7870") == canonical
    assert normalise_uuid("uuid:12c1df3e-df35-4fcf-918b-643ff15a7870") == canonical
    assert normalise_uuid("{12c1df3e-df35-4fcf-918b-643ff15a7870}") == canonical
    assert normalise_uuid("12c1df3edf354fcf918b643ff15a7870") == canonical
    assert normalise_uuid("urn:uuid:not-a-uuid") is None


ISBN13 = Identifier("isbn_13", "9780306406157")
ISBN10 = Identifier("isbn_10", "0306406152")


@pytest.mark.parametrize(
    ("value", "scheme", "expected"),
    [
        # ISBNs: prefixes, schemes, bare values; ISBN-10 also yields ISBN-13.
        ("urn:isbn:9780306406157", None, (ISBN13,)),
        ("978-0-306-40615-7", "ISBN", (ISBN13,)),
        ("0-306-40615-2", "isbn", (ISBN10, ISBN13)),
        ("9780306406157", None, (ISBN13,)),
        ("isbn:0306406152", None, (ISBN10, ISBN13)),
        ("urn:isbn:9780306406157", "URN", (ISBN13,)),
        # Invalid ISBNs are dropped, never stored.
        ("978-0-306-40615-8", "ISBN", ()),
        ("urn:isbn:12345", None, ()),
        ("garbage", "ISBN", ()),
        ("", "ISBN", ()),
        ("   ", None, ()),
        # ASINs.
        ("B00TEST123", "MOBI-ASIN", (Identifier("asin", "B00TEST123"),)),
        ("B00TEST123", "ASIN", (Identifier("asin", "B00TEST123"),)),
        ("B00TEST123", None, (Identifier("asin", "B00TEST123"),)),
        ("0306406152", "MOBI-ASIN", (Identifier("asin", "0306406152"),)),
        ("amazon:B00TEST123", None, (Identifier("asin", "B00TEST123"),)),
        ("not-an-asin", "ASIN", ()),
        # UUIDs.
        (
            "urn:uuid:8B3EBB46-DA57-11E2-AB84-32F5FD9156E7",
            None,
            (Identifier("uuid", "8b3ebb46-da57-11e2-ab84-32f5fd9156e7"),),
        ),
        (
            "urn:uuid:bca234de-5f3c-11e1-837d-001cc0a62c0b",
            "URN",
            (Identifier("uuid", "bca234de-5f3c-11e1-837d-001cc0a62c0b"),),
        ),
        (
            "5EDEC18F-8BC8-40C2-B612-E1ADB61C82AE",
            "uuid",
            (Identifier("uuid", "5edec18f-8bc8-40c2-b612-e1adb61c82ae"),),
        ),
        (
            "uuid:164dfeb9-7601-42e2-b318-00441b67bc3a",
            None,
            (Identifier("uuid", "164dfeb9-7601-42e2-b318-00441b67bc3a"),),
        ),
        ("urn:uuid:xyz", None, ()),
        # Other schemes keep the value under the lower-cased scheme name.
        ("42", "calibre", (Identifier("calibre", "42"),)),
        (
            "5edec18f-8bc8-40c2-b612-e1adb61c82ae",
            "calibre",
            (Identifier("calibre", "5edec18f-8bc8-40c2-b612-e1adb61c82ae"),),
        ),
        ("12345", "GOODREADS", (Identifier("goodreads", "12345"),)),
        ("B20CyAEACAAJ", "Google", (Identifier("google", "B20CyAEACAAJ"),)),
        # calibre's "type:value" text form (EPUB 3, no scheme attribute).
        ("google:B20CyAEACAAJ", None, (Identifier("google", "B20CyAEACAAJ"),)),
        ("calibre:543", None, (Identifier("calibre", "543"),)),
        (
            "URI:http://www.gutenberg.org/65659",
            None,
            (Identifier("uri", "http://www.gutenberg.org/65659"),),
        ),
        # Generic or absent schemes.
        (
            "http://www.feedbooks.com/book/22",
            "URI",
            (Identifier("uri", "http://www.feedbooks.com/book/22"),),
        ),
        (
            "https://standardebooks.org/ebooks/h-g-wells/the-time-machine",
            None,
            (Identifier("uri", "https://standardebooks.org/ebooks/h-g-wells/the-time-machine"),),
        ),
        ("pkg-creator-order", None, (Identifier("unknown", "pkg-creator-order"),)),
    ],
)
def test_classify_identifier(
    value: str, scheme: str | None, expected: tuple[Identifier, ...]
) -> None:
    assert classify_identifier(value, scheme) == expected


def test_classify_collapses_whitespace() -> None:
    assert classify_identifier("  some\n  id  ", "DOI") == (Identifier("doi", "some id"),)

"""File names that are not UTF-8: exact bytes kept, display text read in a legacy code page."""

from __future__ import annotations

import pytest

from shelfscan.catalogue.pathcodec import decode_legacy, display_path, from_db, to_db

# (raw bytes of a path as an old share stores them, display text expected)
LEGACY_TABLE: list[tuple[bytes, str]] = [
    # valid UTF-8 is left alone, whatever it holds
    ("Noël/café.epub".encode(), "Noël/café.epub"),
    ("Толстой/Война и мир.fb2".encode(), "Толстой/Война и мир.fb2"),
    ("张三/书.epub".encode(), "张三/书.epub"),
    (b"plain/ascii.epub", "plain/ascii.epub"),
    # Western names written by Windows in cp1252 / Latin-1
    ("Noël/café.epub".encode("latin-1"), "Noël/café.epub"),
    ("Gérard de Nerval/Aurélia.epub".encode("cp1252"), "Gérard de Nerval/Aurélia.epub"),
    ("Größe.pdf".encode("latin-1"), "Größe.pdf"),
    ("Ærøskøbing.epub".encode("latin-1"), "Ærøskøbing.epub"),
    ("García Márquez/Cien años.epub".encode("cp1252"), "García Márquez/Cien años.epub"),
    ("Brontë/Jane Eyre.epub".encode("latin-1"), "Brontë/Jane Eyre.epub"),
    ("Price €5 – “quoted”.pdf".encode("cp1252"), "Price €5 – “quoted”.pdf"),
    ("Œuvres complètes.epub".encode("cp1252"), "Œuvres complètes.epub"),
    ("Zoë.epub".encode("latin-1"), "Zoë.epub"),
    # Cyrillic names in cp1251: whole words of high bytes
    ("Толстой/Война и мир.fb2".encode("cp1251"), "Толстой/Война и мир.fb2"),
    ("Пушкин.epub".encode("cp1251"), "Пушкин.epub"),
    ("Ёжик в тумане.mp3".encode("cp1251"), "Ёжик в тумане.mp3"),
    ("Булгаков/Мастер и Маргарита (1967).epub".encode("cp1251"),
     "Булгаков/Мастер и Маргарита (1967).epub"),
    ("Он.epub".encode("cp1251"), "Он.epub"),
    # one segment UTF-8, the next legacy: each read on its own
    ("Noël".encode() + b"/" + "café.epub".encode("latin-1"), "Noël/café.epub"),
    ("Автор".encode("cp1251") + b"/" + "Книга.epub".encode(), "Автор/Книга.epub"),
    # bytes cp1252 leaves undefined are read as Latin-1 and never fail
    (b"\x81\x8d\x8f\x90\x9d.epub", "\x81\x8d\x8f\x90\x9d.epub"),
    (b"\xff\xfe.epub", "яю.epub"),  # nothing but high bytes: read as Cyrillic, never a failure
    (b"\xe9.epub", "é.epub"),
    (b"\xc0\xc1\xc2", "АБВ"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "shown"), LEGACY_TABLE)
def test_display_text_of_legacy_names(raw: bytes, shown: str) -> None:
    path = raw.decode("utf-8", "surrogateescape")  # what os.scandir hands us
    assert display_path(path) == shown
    text, stored = to_db(path)
    assert from_db(text, stored) == path  # the exact bytes survive the catalogue
    text.encode("utf-8")  # and what PostgreSQL gets is valid text


def test_decode_legacy_never_fails_on_any_byte() -> None:
    for byte in range(256):
        assert isinstance(decode_legacy(bytes([byte]) * 3), str)
        assert isinstance(decode_legacy(b"ab" + bytes([byte]) + b".epub"), str)


def test_a_valid_path_is_returned_as_is() -> None:
    path = "Author/Title.epub"
    assert display_path(path) is path

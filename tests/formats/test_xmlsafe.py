"""The hardened XML parser refuses every classic XML attack with a one-line ParseError."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shelfscan.formats.records import ParseError
from shelfscan.formats.xmlsafe import MAX_DEPTH, UnsafeXMLError, parse_xml


def _refused(data: bytes) -> ParseError:
    started = time.perf_counter()
    with pytest.raises(ParseError) as info:
        parse_xml(data)
    assert time.perf_counter() - started < 1.0
    message = str(info.value)
    assert message and "\n" not in message
    return info.value


def test_parses_plain_xml_without_comments_or_pis() -> None:
    root = parse_xml(b'<?xml version="1.0"?><a x="1"><!-- note --><?pi data?><b>text</b></a>')
    assert root.tag == "a"
    assert [child.tag for child in root] == ["b"]
    assert root[0].text == "text"


def test_accepts_utf16_and_xhtml_doctype() -> None:
    root = parse_xml('<?xml version="1.0" encoding="UTF-16"?><a>é</a>'.encode("utf-16"))
    assert root.text == "é"
    doctype = (
        b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.1//EN" '
        b'"http://www.w3.org/TR/xhtml11/DTD/xhtml11.dtd"><html><p>x</p></html>'
    )
    assert parse_xml(doctype).tag == "html"


@pytest.mark.parametrize(
    "data",
    [b"", b"not xml at all", b"<a><b></a>", b"<a>&undefined;</a>", b"\xff\xfe\x00garbage"],
)
def test_malformed_xml(data: bytes) -> None:
    error = _refused(data)
    assert not isinstance(error, UnsafeXMLError)
    assert str(error).startswith("malformed XML")


def test_billion_laughs() -> None:
    entities = "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    data = f'<!DOCTYPE r [<!ENTITY lol0 "lol">{entities}]><r>&lol9;</r>'.encode()
    assert isinstance(_refused(data), UnsafeXMLError)


def test_small_internal_entities_are_refused_too() -> None:
    """Even a harmless-looking internal entity is refused: ebooks never need one."""
    error = _refused(b'<!DOCTYPE r [<!ENTITY name "value">]><r>&name;</r>')
    assert isinstance(error, UnsafeXMLError)


def test_quadratic_blowup_is_refused() -> None:
    big = "x" * 100_000
    data = f'<!DOCTYPE r [<!ENTITY a "{big}">]><r>{"&a;" * 10_000}</r>'.encode()
    assert isinstance(_refused(data), UnsafeXMLError)


def test_external_entity_does_not_read_files(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    for uri in (secret.as_uri(), "file:///etc/passwd"):
        data = f'<!DOCTYPE r [<!ENTITY xxe SYSTEM "{uri}">]><r>&xxe;</r>'.encode()
        error = _refused(data)
        assert isinstance(error, UnsafeXMLError)
        assert "TOP-SECRET" not in str(error) and "root:" not in str(error)


def test_external_parameter_entity_and_dtd_are_not_loaded(tmp_path: Path) -> None:
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY leak "LEAKED-VALUE">')
    pe = f'<!DOCTYPE r [<!ENTITY % ext SYSTEM "{dtd.as_uri()}"> %ext;]><r>&leak;</r>'.encode()
    assert isinstance(_refused(pe), UnsafeXMLError)
    # An external DTD subset is ignored, so its entity stays an unexpanded reference.
    external = f'<!DOCTYPE r SYSTEM "{dtd.as_uri()}"><r>&leak;</r>'.encode()
    try:
        root = parse_xml(external)
    except ParseError as exc:
        assert "LEAKED" not in str(exc)
    else:
        assert "LEAKED" not in "".join(root.itertext())


def test_network_is_never_touched() -> None:
    data = b'<!DOCTYPE r [<!ENTITY net SYSTEM "http://127.0.0.1:9/x">]><r>&net;</r>'
    assert isinstance(_refused(data), UnsafeXMLError)


def test_depth_limit() -> None:
    assert MAX_DEPTH == 256
    ok = b"<a>" * MAX_DEPTH + b"</a>" * MAX_DEPTH
    assert parse_xml(ok).tag == "a"
    too_deep = b"<a>" * (MAX_DEPTH + 1) + b"</a>" * (MAX_DEPTH + 1)
    assert isinstance(_refused(too_deep), UnsafeXMLError)
    assert isinstance(_refused(b"<a>" * 300 + b"</a>" * 300), UnsafeXMLError)

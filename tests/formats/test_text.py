"""Text helpers: HTML stripping, string cleaning and date normalisation."""

from __future__ import annotations

import pytest

from shelfscan.formats.text import clean, normalise_date, strip_html


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<p>Hello&nbsp;<b>world</b></p><p>Two<br/>lines</p>", "Hello world\n\nTwo\nlines"),
        ("&lt;p&gt;Escaped &amp;amp; twice&lt;/p&gt;", "Escaped & twice"),
        ("<div>\n  <p>Source\n   newlines are spaces</p>\n</div>", "Source newlines are spaces"),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
        ("Plain text\nkeeps its   lines", "Plain text\nkeeps its lines"),
        ("Fish &amp; chips &#8212; &eacute;", "Fish & chips — é"),
        ("<script>alert(1)</script><style>p{}</style>Visible", "Visible"),
        ("<p>unclosed <i>markup", "unclosed markup"),
        ("<p>broken <b", "broken <b"),
        ("a < b and c > d", "a < b and c > d"),
        ("<!-- hidden --><p>shown</p>", "shown"),
        ("<p>nul\x00 and \x07bell</p>", "nul and bell"),
        ('<a href="https://x">link</a> text', "link text"),
        ("", ""),
        ("<p>   </p>", ""),
    ],
)
def test_strip_html(raw: str, expected: str) -> None:
    assert strip_html(raw) == expected


def test_strip_html_does_not_expand_xml_entities() -> None:
    hostile = '<!DOCTYPE x [<!ENTITY a SYSTEM "file:///etc/passwd">]><p>&a;</p>'
    result = strip_html(hostile)
    assert "root:" not in result


def test_strip_html_large_malformed_input_is_fast() -> None:
    import time

    started = time.perf_counter()
    strip_html("<div><p>" * 20_000 + "text" + "<" * 50_000)
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("   \t\n ", None),
        ("  Title  ", "Title"),
        ("A\x00B\x01C", "ABC"),
        ("Many   inner \t spaces\nand lines", "Many inner spaces and lines"),
        ("zero\u200bwidth\ufeff", "zerowidth"),
        ("\x85C1 control\x9f", "C1 control"),
        ("Non\u00a0breaking", "Non breaking"),
        ("lone\ud800surrogate", "lonesurrogate"),
    ],
)
def test_clean(raw: str | None, expected: str | None) -> None:
    assert clean(raw) == expected


def test_clean_multiline_keeps_paragraphs() -> None:
    assert clean("  one \r\n two\t\tthree\n\n\n\nfour  ", multiline=True) == (
        "one\ntwo three\n\nfour"
    )
    assert clean("\n\n", multiline=True) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2010", "2010"),
        ("2010-05", "2010-05"),
        ("2010-05-03", "2010-05-03"),
        ("2010-05-03T00:00:00+00:00", "2010-05-03"),
        ("2012-08-28T18:00:00Z", "2012-08-28"),
        ("2021-04-05T23:00:07.039989+00:00", "2021-04-05"),
        ("2010-5-3", "2010-05-03"),
        ("2010/05/03", "2010-05-03"),
        ("20100503", "2010-05-03"),
        ("2010-05-03 12:30", "2010-05-03"),
        ("0101-01-01T00:00:00+00:00", None),  # calibre's "unknown"
        ("0100-12-31T23:00:00+00:00", None),  # the same after a time-zone shift
        ("May 2010", "2010"),
        ("3 May 2010", "2010"),
        ("Published in 1897.", "1897"),
        ("2010-13-01", "2010"),
        ("2010-02-30", "2010-02"),
        ("2012-02-29", "2012-02-29"),
        ("2011-02-29", "2011-02"),
        ("unknown", None),
        ("", None),
        (None, None),
        ("12", None),
    ],
)
def test_normalise_date(raw: str | None, expected: str | None) -> None:
    assert normalise_date(raw) == expected

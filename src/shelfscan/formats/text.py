"""Text clean-up shared by format parsers.

Metadata strings arrive with stray control characters, odd whitespace, HTML
markup and every date format imaginable; these helpers make them storable.
"""

from __future__ import annotations

import calendar
import html
import re
from decimal import Decimal, InvalidOperation

__all__ = ["clean", "normalise_date", "strip_html"]

# C0 controls except \t and \n, DEL, C1 controls, lone surrogates and the Unicode
# non-characters that PostgreSQL text or terminals choke on.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_INVISIBLE_RE = re.compile(r"[\u200b\u2060\ufeff]")
_SPACE_RUN_RE = re.compile(r"[^\S\n]+")
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_DIGITS_RE = re.compile(r"(\d+)")
_TAG_RE = re.compile(r"<\s*/?\s*[A-Za-z][^<>]*>|<!--")

_BREAK_TAGS = frozenset({"br", "hr"})
_BLOCK_TAGS = frozenset(
    {
        "p", "div", "section", "article", "blockquote", "pre", "ul", "ol", "dl",
        "table", "h1", "h2", "h3", "h4", "h5", "h6", "header", "footer", "aside",
    }
)  # fmt: skip
_LINE_TAGS = frozenset({"li", "tr", "dt", "dd", "caption", "figcaption"})
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template"})


def clean(s: str | None, *, multiline: bool = False) -> str | None:
    """Make a metadata string storable, or None when nothing is left.

    Single-line fields get every whitespace run collapsed to one space;
    `multiline` keeps line breaks (at most one blank line) for descriptions.
    """
    if s is None:
        return None
    if s.isprintable():
        # Fast path: no controls, no invisible format characters, no line breaks.
        return " ".join(s.split()) or None
    text = s.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL_RE.sub("", text)
    text = _INVISIBLE_RE.sub("", text)
    if not multiline:
        return " ".join(text.split()) or None
    lines = [_SPACE_RUN_RE.sub(" ", line).strip() for line in text.split("\n")]
    joined = _BLANK_LINES_RE.sub("\n\n", "\n".join(lines)).strip()
    return joined or None


# Markers the extractor emits for tag-made breaks; input control characters are
# removed first, so they cannot collide with text.
_PARA = "\x00"
_LINE = "\x01"


_SKIPPED_RE = re.compile(
    r"<(script|style|head|title|template)\b[^>]*>.*?(?:</\1\s*>|$)", re.IGNORECASE | re.DOTALL
)
_COMMENT_RE = re.compile(r"<!--.*?(?:-->|$)|<![^>]*>|<\?[^>]*>", re.DOTALL)
_ANY_TAG_RE = re.compile(r"</?([A-Za-z][A-Za-z0-9:-]*)(?:[\s/][^<>]*)?>")


def _tag_break(match: re.Match[str]) -> str:
    tag = match.group(1).lower()
    if tag in _BREAK_TAGS or tag in _LINE_TAGS:
        return _LINE
    if tag in _BLOCK_TAGS:
        return _PARA
    return ""


def strip_html(s: str | None) -> str:
    """Turn an HTML (or escaped-HTML, or plain) description into plain text.

    Regular expressions over the tags, then entities: it never raises on broken
    markup, involves no entity or DTD machinery of an XML parser, and costs a
    few microseconds (the stdlib HTMLParser took ~200 us a description).
    """
    if not s:
        return ""
    text = _INVISIBLE_RE.sub("", _CONTROL_RE.sub("", s.replace("\r\n", "\n").replace("\r", "\n")))
    if "<" not in text and "&lt;" in text.lower():
        # Double-escaped markup ("&lt;p&gt;") arrives as text after XML parsing.
        text = html.unescape(text)
    if not _TAG_RE.search(text):
        # Plain text: its line breaks are meaningful, unlike in HTML.
        return clean(html.unescape(text), multiline=True) or ""
    text = _SKIPPED_RE.sub("", _COMMENT_RE.sub("", text))
    # In HTML, source line breaks are mere spaces; only tags make breaks.
    text = _ANY_TAG_RE.sub(_tag_break, text.replace("\n", " "))
    text = html.unescape(text)
    paragraphs = []
    for para in text.split(_PARA):
        lines = [" ".join(line.split()) for line in para.split(_LINE)]
        text_lines = [line for line in lines if line]
        if text_lines:
            paragraphs.append("\n".join(text_lines))
    return "\n\n".join(paragraphs)


_ISO_RE = re.compile(
    r"^\s*(?P<y>[+-]?\d{4})(?:(?P<sep>[-/.])(?P<m>\d{1,2})(?:(?P=sep)(?P<d>\d{1,2}))?)?"
    r"(?:$|[T\s_]|[+-]\d\d:?\d\d$|Z$)"
)
_COMPACT_RE = re.compile(r"^\s*(?:D:)?(?P<y>\d{4})(?P<m>\d{2})(?P<d>\d{2})(?:$|[T\s\d+Z-])")
_YEAR_RE = re.compile(r"(?<!\d)(\d{4})(?!\d)")
# calibre stores "unknown" as 0101-01-01 (or 0100-12-31 after a time-zone shift).
_MIN_YEAR = 102
_MAX_YEAR = 9999


def normalise_date(s: str | None) -> str | None:
    """Reduce a date to the ISO prefix it actually states: YYYY, YYYY-MM or YYYY-MM-DD."""
    if not s:
        return None
    text = s.strip()
    match = _ISO_RE.match(text) or _COMPACT_RE.match(text)
    if match:
        year_text = match.group("y")
        if year_text.startswith(("+", "-")):
            return None
        year = int(year_text)
        if not _MIN_YEAR <= year <= _MAX_YEAR:
            return None
        month_text, day_text = match.group("m"), match.group("d")
        if month_text is None or not 1 <= int(month_text) <= 12:
            return f"{year:04d}"
        month = int(month_text)
        if day_text is None or not 1 <= int(day_text) <= calendar.monthrange(year, month)[1]:
            return f"{year:04d}-{month:02d}"
        return f"{year:04d}-{month:02d}-{int(day_text):02d}"
    for found in _YEAR_RE.finditer(text):
        year = int(found.group(1))
        if 1000 <= year <= _MAX_YEAR:
            return f"{year:04d}"
    return None


def series_number(value: str | None) -> Decimal | None:
    """A series position as written ("3", "3.5", "2,5"); None for anything absurd or not a number."""
    text = (value or "").strip().replace(",", ".")
    if not text or len(text) > 32:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite() or abs(number) >= 1_000_000:
        return None
    return number


def natural_key(name: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that puts "page2" before "page10", case-insensitively.

    Digit runs compare by magnitude via (length without leading zeros, digits),
    so absurdly long numbers cost nothing and never hit int() limits.
    """
    parts: list[tuple[int, int, str]] = []
    for i, piece in enumerate(_DIGITS_RE.split(name.casefold())):
        if i % 2:
            digits = piece.lstrip("0")
            parts.append((0, len(digits), digits))
        elif piece:
            parts.append((1, 0, piece))
    return tuple(parts)

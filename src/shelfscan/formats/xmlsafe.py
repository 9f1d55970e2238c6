"""Hardened XML parsing for untrusted ebook files.

Ebook XML comes from strangers, so no entity is ever expanded, no DTD or network
resource is fetched, and pathological nesting is refused before it can hurt.
"""

from __future__ import annotations

from lxml import etree

from shelfscan.formats.records import ParseError

__all__ = ["MAX_DEPTH", "UnsafeXMLError", "first_child", "local_name", "parse_xml"]

MAX_DEPTH = 256
"""libxml2 refuses deeper documents unless huge_tree is set; tests pin that behaviour."""

# libxml2 messages that mean "attack" rather than "sloppy file".
_HOSTILE_MARKERS = ("amplification", "excessive depth", "entity reference loop", "huge")


class UnsafeXMLError(ParseError):
    """The XML was refused as hostile (entity declarations, bombs, absurd depth).

    Callers may tolerate a merely sloppy optional document (a table of contents)
    but should fail the whole file on this one.
    """


def _new_parser() -> etree.XMLParser:
    """Build a fresh parser: lxml parsers are not thread-safe and cost well under 1 µs."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def _one_line(message: str) -> str:
    return " ".join(message.split())[:300]


def parse_xml(data: bytes) -> etree._Element:
    """Parse untrusted bytes into an element tree or raise ParseError with a one-line reason."""
    try:
        root = etree.fromstring(data, _new_parser())
    except etree.XMLSyntaxError as exc:
        reason = _one_line(str(exc))
        if any(marker in reason.lower() for marker in _HOSTILE_MARKERS):
            raise UnsafeXMLError(f"unsafe XML refused: {reason}") from None
        raise ParseError(f"malformed XML: {reason}") from None
    except (etree.LxmlError, ValueError) as exc:
        raise ParseError(f"malformed XML: {_one_line(str(exc))}") from None
    if root is None:
        raise ParseError("malformed XML: document is empty")
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        # A legitimate ebook never needs its own entities; declaring them is how
        # billion-laughs and XXE attacks start, so refuse instead of guessing.
        raise UnsafeXMLError("unsafe XML refused: the document declares entities")
    return root


def local_name(tag: object) -> str:
    """An element's tag without its namespace; "" for comments and other non-elements.

    Ebook writers disagree on namespaces (or omit them), so readers match on the
    local name alone.
    """
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def first_child(parent: etree._Element | None, local: str) -> etree._Element | None:
    """The first direct child whose local name is `local`, in any namespace (None if absent)."""
    if parent is None:
        return None
    for el in parent:
        if local_name(el.tag) == local:
            return el
    return None

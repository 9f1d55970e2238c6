"""Records cross the process boundary by pickle: every field must survive the trip."""

from __future__ import annotations

import pickle
from decimal import Decimal

from shelfscan.covers import StoredCover
from shelfscan.formats.records import (
    Chapter,
    Contributor,
    CoverImage,
    Identifier,
    Metadata,
    SeriesEntry,
)
from shelfscan.scan.parse import ParseOutcome, SidecarData, UnitOutcome


def test_a_full_parse_result_round_trips_through_pickle() -> None:
    meta = Metadata(
        format="epub",
        title="T",
        subtitle="S",
        contributors=(Contributor("A B", "author", "B, A"), Contributor("C", "editor")),
        narrators=("N",),
        series=(SeriesEntry("Saga", Decimal("2.5")),),
        genres=("g",),
        tags=("t",),
        description="d",
        publisher="p",
        release_date="2001",
        language="en",
        identifiers=(Identifier("isbn_13", "9780000000002"),),
        chapters=(Chapter("One", 0, "a.xhtml", None), Chapter("Two", 1, None, 12.5)),
        cover=CoverImage(b"\xff\xd8", "image/jpeg"),
        duration_s=3.0,
        page_count=7,
        extra={"k": "v"},
    )
    outcome = ParseOutcome(
        3,
        metadata=meta,
        cover=StoredCover("ab" * 32, "image/jpeg", 1, 2, 3, "x.pack", 40),
        size=10,
        mtime_ns=11,
        inode=12,
        fingerprint="10:ff",
    )
    unit = UnitOutcome(
        1, (outcome,), SidecarData(opf=meta, narrators=("R",), problems=(("p", "r"),))
    )
    back = pickle.loads(pickle.dumps([unit, Identifier("asin", "B000000000")]))
    assert back == [unit, Identifier("asin", "B000000000")]
    assert back[0].files[0].metadata.extra == {"k": "v"}

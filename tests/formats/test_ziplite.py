"""The lean zip reader: what it reads must equal zipfile's, and damage must be caught."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from shelfscan.formats import ziplite


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _open(data: bytes) -> ziplite.ZipLite:
    return ziplite.ZipLite(io.BytesIO(data), len(data))


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_reads_what_zipfile_reads(method: int) -> None:
    members = {
        "mimetype": b"application/epub+zip",
        "OEBPS/ünï.opf": b"<package/>" * 500,
        "a/b.jpg": bytes(range(256)) * 40,
    }
    z = _open(_zip(members, method))
    assert {m.filename: z.read(m, 1 << 20) for m in z.members} == members


def test_data_before_the_archive_is_allowed() -> None:
    z = _open(b"#!stub\n" * 100 + _zip({"x.txt": b"hello"}))
    (member,) = z.members
    assert z.read(member, 100) == b"hello"


def test_a_damaged_member_is_refused() -> None:
    data = bytearray(_zip({"x.txt": b"hello world " * 100}, zipfile.ZIP_STORED))
    at = data.find(b"hello world")
    data[at] = ord("J")
    z = _open(bytes(data))
    with pytest.raises(ziplite.BadZip, match="CRC"):
        z.read(z.members[0], 1 << 20)


def test_the_cap_holds_whatever_the_headers_claim() -> None:
    z = _open(_zip({"big": b"\0" * (8 << 20)}))
    (member,) = z.members
    assert member.compress_size < 20_000 < member.file_size  # a small bomb
    # Inflation stops one byte past the cap; the caller refuses that as too large.
    assert len(z.read(member, 1024)) == 1025


def test_not_a_zip_and_zip64_are_told_apart(tmp_path: Path) -> None:
    with pytest.raises(ziplite.BadZip):
        _open(b"this is plain text, long enough to hold an end record....")
    eocd64 = b"PK\x05\x06" + b"\0" * 4 + b"\xff\xff" * 2 + b"\xff" * 8 + b"\0\0"
    with pytest.raises(ziplite.Unsupported):
        _open(b"\0" * 100 + eocd64)


def test_an_archive_comment_longer_than_the_first_look_is_found() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.txt", b"hello")
        zf.comment = b"c" * 5000
    z = _open(buf.getvalue())
    assert z.read(z.members[0], 100) == b"hello"

"""Header sniffing gives the same type and size Pillow reports, without decoding."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from shelfscan.formats.images import sniff_image


def _encode(fmt: str, size: tuple[int, int], mode: str = "RGB", **options: object) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, "green").save(buf, fmt, **options)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "mime", "mode", "options"),
    [
        ("PNG", "image/png", "RGB", {}),
        ("JPEG", "image/jpeg", "RGB", {}),
        ("JPEG", "image/jpeg", "RGB", {"progressive": True}),
        ("JPEG", "image/jpeg", "L", {}),
        ("GIF", "image/gif", "P", {}),
        ("WEBP", "image/webp", "RGB", {"lossless": False}),
        ("WEBP", "image/webp", "RGB", {"lossless": True}),
        ("WEBP", "image/webp", "RGBA", {"lossless": False}),
        ("BMP", "image/bmp", "RGB", {}),
    ],
)
@pytest.mark.parametrize("size", [(1, 1), (37, 21), (640, 480), (3000, 17)])
def test_sniff_matches_pillow(
    fmt: str, mime: str, mode: str, options: dict[str, object], size: tuple[int, int]
) -> None:
    data = _encode(fmt, size, mode, **options)
    assert sniff_image(data) == (mime, *size)


def test_sniff_webp_extended_header() -> None:
    # Metadata forces the VP8X container even for simple images.
    image = Image.new("RGB", (123, 45), "red")
    buf = io.BytesIO()
    image.save(buf, "WEBP", exif=Image.Exif().tobytes() or b"Exif\x00\x00")
    data = buf.getvalue()
    assert data[12:16] == b"VP8X"
    assert sniff_image(data) == ("image/webp", 123, 45)


def test_sniff_jpeg_with_exif_before_frame_header() -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 5000  # ImageDescription: a large APP1 segment before SOF
    buf = io.BytesIO()
    Image.new("RGB", (64, 32)).save(buf, "JPEG", exif=exif.tobytes())
    data = buf.getvalue()
    assert data.index(b"\xff\xe1") < 100 and data.index(b"\xff\xc0") > 5000
    assert sniff_image(data) == ("image/jpeg", 64, 32)


def test_sniff_skips_dht_marker_in_sof_range() -> None:
    # SOI, a DHT segment (0xC4, inside the SOF range but not a frame), then SOF2.
    dht = b"\xff\xc4\x00\x04\x00\x00"
    sof2 = b"\xff\xc2\x00\x0b\x08\x00\x10\x00\x20\x01\x01\x11\x00"
    assert sniff_image(b"\xff\xd8" + dht + sof2) == ("image/jpeg", 32, 16)


def test_sniff_uses_only_the_header() -> None:
    png = _encode("PNG", (300, 200))
    assert sniff_image(png[:32]) == ("image/png", 300, 200)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello world",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8",
        b"\xff\xd8\xff\xe0\x00",
        b"\xff\xd8\xff\xda\x00\x08",
        b"\xff\xd8\x00\x00",
        b"GIF89a\x01",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"BM" + b"\x00" * 10,
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
    ],
)
def test_sniff_unknown_or_truncated(data: bytes) -> None:
    assert sniff_image(data) is None

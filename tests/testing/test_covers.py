"""The synthetic covers are real JPEGs that decoders accept, unique per seed."""

from __future__ import annotations

import io

from PIL import Image

from shelfscan.testing.covers import cover_jpeg


def test_cover_is_a_baseline_jpeg_of_the_requested_size() -> None:
    data = cover_jpeg(7)
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    assert image.size == (400, 600)
    assert image.mode == "RGB"
    assert not image.info.get("progressive")
    image.load()  # decodes every scan without error
    assert data[:4] == b"\xff\xd8\xff\xe0"  # SOI, then JFIF APP0 as sniffers expect
    assert data[6:10] == b"JFIF"
    assert data.endswith(b"\xff\xd9")


def test_cover_size_is_near_the_target() -> None:
    sizes = [len(cover_jpeg(seed)) for seed in range(40)]
    assert all(45_000 <= size <= 55_000 for size in sizes), sizes
    small = cover_jpeg(3, size=(120, 180), target_bytes=6_000)
    assert 4_500 <= len(small) <= 7_500
    image = Image.open(io.BytesIO(small))
    image.load()
    assert image.size == (120, 180)


def test_covers_are_unique_and_deterministic() -> None:
    covers = [cover_jpeg(seed) for seed in range(100)]
    assert len(set(covers)) == 100
    assert cover_jpeg(42) == cover_jpeg(42)
    assert b"seed=42" in cover_jpeg(42)[:80]
    # seeds sharing a pool bucket still decode to a picture (same pixels, other comment)
    for seed in (1, 17, 33):
        image = Image.open(io.BytesIO(cover_jpeg(seed)))
        image.load()
        assert image.size == (400, 600)


def test_tiny_and_unreachable_targets_still_give_valid_jpegs() -> None:
    for size, target in (((1, 1), 100), ((8, 8), 10), ((30, 40), 1_000), ((64, 64), 10**6)):
        image = Image.open(io.BytesIO(cover_jpeg(11, size, target)))
        image.load()
        assert image.size == size

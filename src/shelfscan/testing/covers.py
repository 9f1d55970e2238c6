"""Cheap, valid, unique cover JPEGs for synthetic libraries.

Encoding a fresh 50 KB JPEG per book would cost more than writing the whole EPUB,
so a small pool of base images is encoded once per process (memoised on the pure
function `_base_jpeg`), and each cover is made unique by a COM segment carrying
its seed. Pillow is a test/bench-only dependency.
"""

from __future__ import annotations

import io
import random
import struct
from functools import lru_cache

try:
    from PIL import Image, ImageDraw
except ImportError as exc:  # a runtime dependency, so only a broken install lacks it
    raise ImportError("shelfscan.testing needs Pillow: pip install pillow") from exc

POOL_SIZE = 16
"""Distinct base images per (size, target) pair; covers with seeds in one bucket share pixels."""

_QUALITY_MIN = 5
_QUALITY_MAX = 95
_NOISE_LEVELS = (0.2, 0.05, 0.6, 1.0)
"""Noise blend factors tried in order until `target_bytes` lies within the quality range."""


def cover_jpeg(seed: int, size: tuple[int, int] = (400, 600), target_bytes: int = 50_000) -> bytes:
    """A baseline JPEG of `size` pixels, about `target_bytes` long, unique for `seed`.

    Targets outside what the size allows give the nearest reachable length (a 1x1
    cover cannot be 50 KB).

    The COM segment goes right after the JFIF APP0 segment rather than straight after
    SOI: JFIF requires APP0 first, and byte sniffers look for "JFIF" at offset 6.
    """
    base = _base_jpeg(seed % POOL_SIZE, size, target_bytes)
    insert_at = _after_app0(base)
    payload = f"shelfscan synthetic cover; seed={seed}".encode("ascii")
    segment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload
    return base[:insert_at] + segment + base[insert_at:]


def _after_app0(jpeg: bytes) -> int:
    """Offset just past SOI and, when present, the APP0 (JFIF) segment."""
    if jpeg[2:4] == b"\xff\xe0":
        return 4 + int.from_bytes(jpeg[4:6], "big")
    return 2


@lru_cache(maxsize=4 * POOL_SIZE)
def _base_jpeg(bucket: int, size: tuple[int, int], target_bytes: int) -> bytes:
    """Encode one pool image whose size is closest to `target_bytes` (pure, so memoised)."""
    best = b""
    for noise in _NOISE_LEVELS:
        image = _base_image(bucket, size, noise)
        low, high = _encode(image, _QUALITY_MIN), _encode(image, _QUALITY_MAX)
        if len(low) > target_bytes:
            best = _closer(best, low, target_bytes)
            continue
        if len(high) < target_bytes:
            best = _closer(best, high, target_bytes)
            continue
        return _search_quality(image, target_bytes, low, high)
    return best


def _search_quality(image: Image.Image, target: int, low: bytes, high: bytes) -> bytes:
    """Bisect the JPEG quality; size grows monotonically enough with quality for this."""
    q_low, q_high = _QUALITY_MIN, _QUALITY_MAX
    while q_high - q_low > 1:
        q_mid = (q_low + q_high) // 2
        mid = _encode(image, q_mid)
        if len(mid) < target:
            q_low, low = q_mid, mid
        else:
            q_high, high = q_mid, mid
    return _closer(low, high, target)


def _closer(a: bytes, b: bytes, target: int) -> bytes:
    if not a:
        return b
    return a if abs(len(a) - target) <= abs(len(b) - target) else b


def _encode(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, optimize=False, progressive=False)
    return buffer.getvalue()


def _base_image(bucket: int, size: tuple[int, int], noise: float) -> Image.Image:
    """Smooth colour field + a title band + pixel noise; the noise sets the JPEG size."""
    width, height = size
    rng = random.Random(f"shelfscan-cover:{bucket}")
    field = Image.frombytes("RGB", (6, 9), rng.randbytes(6 * 9 * 3))
    image = field.resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    band_top = height // 8 + rng.randrange(max(1, height // 4))
    band_colour = (rng.randrange(256), rng.randrange(256), rng.randrange(256))
    draw.rectangle(
        (width // 10, band_top, width - width // 10, band_top + height // 6), band_colour
    )
    grain = Image.frombytes("RGB", size, rng.randbytes(width * height * 3))
    return Image.blend(image, grain, noise)

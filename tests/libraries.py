"""Small generated libraries for tests that need many files quickly."""

from __future__ import annotations

from pathlib import Path

from shelfscan.testing.epubs import CreatorSpec, EpubSpec, epub_bytes


def small_library(root: Path, count: int, *, authors: int = 7, folders: int = 10) -> list[Path]:
    """`count` tiny EPUBs spread over `folders` sub-folders; byte-identical for the same args."""
    paths = []
    for i in range(count):
        spec = EpubSpec(
            title=f"Title {i:05d}",
            creators=(CreatorSpec(f"Writer {i % authors}"),),
            style="epub2" if i % 2 else "epub3",
            subjects=(f"Genre {i % 5}",),
            language="en",
            chapters=(("Only", "x"),),
        )
        path = root / f"shelf{i % folders:02d}" / f"book{i:05d}.epub"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(epub_bytes(spec))
        paths.append(path)
    return paths

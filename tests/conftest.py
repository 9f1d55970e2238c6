"""Shared fixtures. Database fixtures live in tests/db_fixtures.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.db_fixtures", "tests.scanning", "tests.daemons"]

CORPUS_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus"


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    """The real-file corpus beside the project; a user's clone has none, so skip there."""
    if not (CORPUS_DIR / "truth.json").is_file():
        pytest.skip(
            f"real-file corpus not found at {CORPUS_DIR} (only present on the team's machines)"
        )
    return CORPUS_DIR


@pytest.fixture(scope="session")
def corpus_truth(corpus_dir: Path) -> dict[str, dict[str, Any]]:
    truth: dict[str, dict[str, Any]] = json.loads((corpus_dir / "truth.json").read_text("utf-8"))
    return truth

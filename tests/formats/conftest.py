"""Fixtures shared by the format tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def timed() -> Callable[[Callable[[], Any]], Any]:
    """Run a parse that must end within a generous bound, however hostile the file.

    A guard against hangs and blow-ups (a bomb must not stall a worker), not a speed claim.
    """

    def run(fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            return fn()
        finally:
            assert time.perf_counter() - start < 3.0

    return run

"""Constants, targets and labels shared by the bench modules, and its one error type."""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results"
DEFAULT_CACHE = REPO / "bench" / "cache"
RESULT_PREFIX = "BENCH-RESULT "
SCHEMA_VERSION = 1
PROBE_LOOPS = 2_000_000
CASE_TIMEOUT_S = 3600.0

# Targets of the issue, for 10,000 EPUBs on this 2-core machine, warm page cache.
TARGET_RATIO = 10.0
TARGET_FIRST_BOOKS_S = 2000.0
TARGET_NOCHANGE_FILES_S = 25_000.0
TARGET_RSS_MB = 500.0  # the whole process tree, at every size of the big tree (1M files)
TARGET_REF_FIRST = 0.60  # shelfscan's first scan as a share of the reference pipeline's
TARGET_REF_RESCAN = 0.80  # and its no-change rescan
TARGET_SMALL_CLI_S = 0.6  # `shelfscan scan` of ~60 audio files, initialised embedded DB
TARGET_AUDIO_FILES_S = 1000.0
CHANGED_BUDGET = 0.05  # a 1%-changed rescan may add at most 5% of a first scan's time

VARIANT_LABELS = {
    "naive": "(1) naive baseline: one file at a time, find-or-create per name, INSERT per row, autocommit",
    "w1": "(2) shelfscan, 1 worker (SHELFSCAN_WORKERS=1, SHELFSCAN_PARSE_PROCESSES=1)",
    "default": "(3) shelfscan, defaults: first scan",
    "nochange": "no-change rescan",
    "changed1": "rescan, 1% of the EPUBs changed",
    "audio": "audio first scan (MP3/M4B parts)",
    "discover": "discovery + diff only (walk, bulk SELECT, diff, plan), placeholders",
    "placeholders": "first scan of placeholders (walk, read, one error row per file)",
    "reference": "reference pipeline: walk, ProcessPool(2) x 50 files, container+OPF only, "
    "COPY to a stage, merge per 500",
    "reference_full": "reference + covers (one pack per chunk) + chapters (NCX/nav)",
    "reference_rescan": "reference no-change rescan: walk + stat, one bulk SELECT, compare in Python",
}
# What each shelfscan variant is compared with in the reference pipeline.
REFERENCE_OF = {
    "reference_full": "reference",
    "naive": "reference",
    "w1": "reference",
    "default": "reference",
    "placeholders": "reference",
    "nochange": "reference_rescan",
    "changed1": "reference_rescan",
    "discover": "reference_rescan",
}
PLOT_LABELS = {
    "naive": "naive baseline",
    "w1": "shelfscan, 1 worker",
    "default": "shelfscan, defaults",
    "nochange": "no-change rescan",
    "changed1": "rescan, 1% changed",
    "discover": "discovery + diff only (placeholders)",
}


class BenchError(RuntimeError):
    """The benchmark could not run a case; the message says which and why."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

"""`python -m bench`: the command line (options, re-rendering a results JSON)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from bench.common import DEFAULT_CACHE, DEFAULT_OUT, BenchError, log
from bench.database import database_server
from bench.report import evaluate_targets, write_outputs
from bench.runner import run_benchmark

# --- command line --------------------------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark shelfscan against the naive baseline, interleaved, as medians of rounds.",
    )
    parser.add_argument(
        "--books", type=int, default=10_000, help="EPUBs in the main library (default 10000)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--sizes", type=_sizes, default=[1000], help="smaller libraries for the plot (default 1000)"
    )
    parser.add_argument(
        "--audio", type=int, default=None, help="audiobooks (default books/10, at most 1000)"
    )
    parser.add_argument(
        "--big", type=_sizes, default=[10_000, 100_000, 1_000_000],
        help="placeholder trees, comma-separated sizes (default 10000,100000,1000000)",
    )  # fmt: skip
    parser.add_argument(
        "--no-big", "--no-100k", dest="no_big", action="store_true",
        help="skip the placeholder trees",
    )  # fmt: skip
    parser.add_argument(
        "--big-rounds", type=int, default=1,
        help="rounds for trees over 100,000 files and the big EPUB library (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--epub-big", type=int, default=100_000,
        help="a library of this many real EPUBs (first scan, rescan, reference; 0: none; "
        "skipped when the disk is short; default 100000)",
    )  # fmt: skip
    parser.add_argument(
        "--cold", action=argparse.BooleanOptionalAction, default=True,
        help="also run cold-cache cases (drop_caches; needs root; default on)",
    )  # fmt: skip
    parser.add_argument(
        "--small-cli", type=int, default=48, metavar="AUDIOBOOKS",
        help="audiobooks (~1.25 files each) for the small-library CLI case; 0: none (default 48)",
    )  # fmt: skip
    parser.add_argument(
        "--database-url", help="a PostgreSQL server to use (default: an embedded pgserver)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where results go (default bench/results)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="generated libraries (default bench/cache)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 2, help="processes generating libraries"
    )
    parser.add_argument(
        "--change-fraction", type=float, default=0.01, help="EPUBs changed for the rescan (0.01)"
    )
    parser.add_argument(
        "--from-json", type=Path, metavar="JSON",
        help="measure nothing: re-evaluate the targets and re-write the table and plot of a results JSON",
    )  # fmt: skip
    parser.add_argument(
        "--profile", choices=("auto", "always", "never"), default="auto",
        help="profile the first scan when a target is missed (auto), always, or never",
    )  # fmt: skip
    return parser


def rerender(path: Path, args: argparse.Namespace) -> int:
    """Targets, Markdown and plot again from a results JSON (after a change to the report code)."""
    report = json.loads(path.read_text(encoding="utf-8"))
    params = report["params"]
    args.books = params["books"]
    big = params.get("big")
    args.big = big if isinstance(big, list) else ([big] if big else [])
    args.epub_big = params.get("epub_big") or 0
    report["targets"] = evaluate_targets(report, args)
    paths = write_outputs(report, args.out.resolve())
    print(paths["markdown"].read_text(encoding="utf-8"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.from_json is not None:
        return rerender(args.from_json, args)
    if args.books < 1 or args.rounds < 1:
        print("bench: --books and --rounds must be at least 1", file=sys.stderr)
        return 2
    if args.no_big:
        args.big = []
    if args.audio is None:
        args.audio = min(1000, max(10, args.books // 10))
    from shelfscan.logs import configure_logging

    configure_logging("console", "warning")  # migrations of the template: not news here
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    args.out = args.out.resolve()
    args.cache = args.cache.resolve()
    started = time.perf_counter()
    try:
        with database_server(args.database_url) as url:
            report = asyncio.run(run_benchmark(args, url))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    paths = write_outputs(report, args.out)
    print(paths["markdown"].read_text(encoding="utf-8"))
    log("wrote " + ", ".join(str(p) for p in paths.values() if p.exists()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Smoke test of `python -m bench`: it runs end to end and its outputs are well-formed.

Benchmarks are not tests: this runs a 200-book library for one round, without the
100,000-file tree and without profiling, and checks the shape of what it writes,
never the speeds (they depend on the machine and its neighbours).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "naive", "w1", "default", "nochange", "changed1", "audio",
    "reference", "reference_full", "reference_rescan", "discover", "placeholders",
}  # fmt: skip


async def test_bench_smoke_writes_wellformed_results(db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "results"
    command = [
        sys.executable, "-m", "bench",
        "--books", "200", "--rounds", "1", "--big", "300", "--sizes", "",
        "--epub-big", "0", "--no-cold", "--small-cli", "4",
        "--profile", "never",
        "--database-url", db_url,
        "--out", str(out),
        "--cache", str(tmp_path / "cache"),
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    proc = await asyncio.to_thread(
        subprocess.run, command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    report = json.loads((out / "latest.json").read_text(encoding="utf-8"))
    assert report["schema"] == 1
    assert report["params"]["books"] == 200
    by_variant = {v["variant"]: v for v in report["variants"] if v["size"] == 200}
    assert {v["variant"] for v in report["variants"]} == VARIANTS
    for v in report["variants"]:
        m = v["median"]
        assert len(v["runs"]) == 1, v["key"]  # one round, and no two cases under one key
        assert m["seconds"] > 0 and m["rate"] > 0, v["key"]
        assert v["ratio_to_naive"] is not None and v["ratio_to_naive"] > 0, v["key"]
        assert m["rss_main_mb"] > 0 and m["rss_total_mb"] >= m["rss_main_mb"], v["key"]
        assert m["cpu_main_s"] is not None and m["cpu_main_s"] >= 0, v["key"]
    assert by_variant["naive"]["ratio_to_naive"] == 1.0
    # Every shelfscan EPUB case is also a share of the reference pipeline of the same run.
    for name in ("w1", "default", "nochange", "changed1"):
        assert by_variant[name]["pct_of_reference"] > 0, name
    # The reference wrote the same catalogue as shelfscan, covers and chapters in its full variant.
    shelf = by_variant["default"]["runs"][0]["rows"]
    ref = by_variant["reference_full"]["runs"][0]["ref_rows"]
    for ours, theirs in (("books", "books"), ("persons", "persons"), ("book_authors", "book_authors"),
                         ("book_genres", "book_subjects"), ("file_identifiers", "identifiers"),
                         ("covers", "covers"), ("chapters", "chapters")):  # fmt: skip
        assert shelf[ours] == ref[theirs], ours
    assert by_variant["reference"]["runs"][0]["ref_rows"]["covers"] == 0
    assert by_variant["reference_rescan"]["runs"][0]["counts"]["changed"] == 0
    small = report["small_cli"]
    assert small["files"] >= 4 and small["first_wall_s"] > 0 and small["rescan_wall_s"] > 0
    assert small["runs"][0]["first_books"] >= 1 and "embedded_start" in small["phases"]

    # Every variant wrote the same catalogue for the same library.
    first = {k: by_variant[k]["runs"][0]["rows"] for k in ("naive", "w1", "default")}
    assert first["naive"]["books"] == 200
    for table in ("books", "files", "persons", "book_authors", "book_genres", "chapters"):
        assert first["naive"][table] == first["w1"][table] == first["default"][table], table
    assert by_variant["nochange"]["runs"][0]["counts"]["books_updated"] == 0
    changed = by_variant["changed1"]["runs"][0]
    assert changed["counts"]["books_updated"] == changed["changed_files"] >= 1

    targets = {t["target"]: t for t in report["targets"]}
    assert any(name.startswith("first scan") for name in targets)
    assert all(t["met"] in (True, False, None) for t in targets.values())
    assert report["noise"]["rounds"] and report["noise"]["median_ms"] > 0

    markdown = (out / "latest.md").read_text(encoding="utf-8")
    assert markdown.startswith("# shelfscan benchmark")
    table = [line for line in markdown.splitlines() if line.startswith("| (") or "rescan" in line]
    assert len(table) >= 5
    for label in (
        "naive baseline", "1 worker", "defaults", "no-change rescan", "1% of the EPUBs",
        "reference pipeline", "% of reference", "Small library through the CLI", "Scaling",
    ):  # fmt: skip
        assert label in markdown, label
    assert "## Targets" in markdown

    if report["outputs"]["plot"]:
        assert (out / "throughput.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ab_summary_is_the_geometric_mean_of_paired_rounds() -> None:
    """bench.ab's verdict pairs each round's old and new run; a drift that slows both
    builds in one round cancels out of the ratio."""
    from bench.ab import Run, summarise

    runs = [
        # round 0 on a calm machine, round 1 twice as slow for both builds
        Run("old", "first", 0, 1.0, 1.5, 2.0, 0.5),
        Run("new", "first", 0, 1.1, 1.6, 2.2, 0.5),
        Run("old", "first", 1, 2.0, 2.5, 4.0, 1.0),
        Run("new", "first", 1, 2.2, 2.6, 4.4, 1.0),
        Run("old", "rescan", 0, 0.1, 0.5, 0.4, 0.1),
        Run("new", "rescan", 0, 0.1, 0.5, 0.4, 0.1),
        Run("old", "rescan", 1, 0.2, 0.6, 0.5, 0.1),
        Run("new", "rescan", 1, 0.4, 0.6, 0.5, 0.1),
    ]
    summary = summarise(runs)
    assert summary["first"]["elapsed_s"]["ratio_geomean"] == 1.1
    assert summary["first"]["elapsed_s"]["old_median"] == 1.5
    assert summary["first"]["cpu_s"]["ratio_min"] == 1.1
    assert summary["rescan"]["elapsed_s"]["ratio_geomean"] == round(2**0.5, 3)
    assert summary["rescan"]["elapsed_s"]["ratio_max"] == 2.0


def test_no_warm_case_runs_after_a_cache_drop() -> None:
    """A full run's cold cases drop the page cache; a warm case run after one would read its
    library from disk and be reported as warm. Cold rounds come after every warm round, the
    cold placeholder cases stay on the 100k tree, and each round rotates its cases."""
    from bench.cases import plan_cases
    from bench.runner import round_orders

    lib = Path("/nonexistent")
    cases = plan_cases(
        {1000: lib, 10_000: lib},
        None,
        [(10_000, lib), (100_000, lib), (1_000_000, lib)],
        0.01,
        epub_big=(100_000, lib),
        cold=True,
        big_rounds=1,
    )
    # A placeholder tree of an EPUB library's size is another case, under its own key.
    assert len({c.key for c in cases}) == len(cases)
    assert {"reference@10000", "reference@10000-placeholders"} <= {c.key for c in cases}
    orders = round_orders(cases, 3)
    flags = [cold for cold, _, _ in orders]
    assert flags == sorted(flags) and True in flags and False in flags
    for cold, _, order in orders:
        assert all(c.cold == cold for c in order)
    ran = [c for _, _, order in orders for c in order]
    assert {c.key for c in cases} == {c.key for c in ran}  # every case runs
    cold_trees = {c.size for c in cases if c.cold and c.tree == "placeholders"}
    assert cold_trees == {100_000}
    once = [c for c in ran if c.size == 1_000_000]
    assert len(once) == len({c.key for c in once})  # the 1M tree: one round
    warm = [order for cold, _, order in orders if not cold]
    assert warm[0][0] != warm[1][0]  # rotated

"""Runs the cases interleaved in rounds, each in its own process on its own database.

Why it is built this way (see /work/shared/research/limits.md, "noise"): on this
shared 2-core VM the same CPU work runs up to 1.8x slower for minutes at a time.
So every round times every case once, in an order that rotates each round, and a
fixed pure-Python loop (the noise probe) is timed before each round and each case;
ratios between cases of one run stay valid even when the absolute figures wander.

Each case runs in a fresh subprocess (`bench.caseproc`; peak RSS is then per case) on a
fresh database cloned from a migrated template, or, for rescans, from a snapshot of a
finished first scan, so a first scan is really first.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import smallcli
from bench.cases import (
    Case,
    ChangeSet,
    case_key,
    describe_library,
    pick_changed,
    plan_cases,
    restore_pending,
)
from bench.common import CASE_TIMEOUT_S, REPO, RESULT_PREFIX, BenchError, log
from bench.database import Database
from bench.measure import probe_ms
from bench.report import build_report, evaluate_targets


def run_case_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one case in a fresh interpreter and return its result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    code = "from bench.caseproc import case_main; raise SystemExit(case_main())"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=CASE_TIMEOUT_S,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = (proc.stderr or proc.stdout)[-3000:]
    raise BenchError(f"case {spec.get('key')} failed (exit {proc.returncode}):\n{tail}")


def round_orders(cases: list[Case], rounds: int) -> list[tuple[bool, int, list[Case]]]:
    """(cold, round, cases in the order run): every warm round first, then the cold ones.

    A case run after a cache drop reads its library from disk and would be reported
    as warm (the 2026-12-07 full run lost its 100k-EPUB and 1M-file figures that way),
    so no warm case follows a cold one. Each round rotates its cases by one place, so
    no case is always first after the noise probe.
    """
    orders: list[tuple[bool, int, list[Case]]] = []
    for cold in (False, True):
        for rnd in range(rounds):
            current = [c for c in cases if c.cold == cold and (c.rounds is None or rnd < c.rounds)]
            if current:
                shift = rnd % len(current)
                orders.append((cold, rnd, current[shift:] + current[:shift]))
    return orders


@dataclass(slots=True)
class Runner:
    """Runs cases against the databases; keeps the warm-up snapshots."""

    db: Database
    cache: Path
    change_backup: Path
    snapshots: dict[tuple[Path, str], str] = field(default_factory=dict)
    counter: int = 0
    cold: ColdCache | None = None

    async def run(self, case: Case, *, profile_dir: Path | None = None) -> dict[str, Any]:
        self.counter += 1
        name = f"{self.db.prefix}c{self.counter}"
        template = self.db.template if case.fresh else self.snapshots[(case.scan_root, case.family)]
        url = await self.db.create(name, template)
        work = Path(tempfile.mkdtemp(prefix="shelfscan-bench-"))
        changes: ChangeSet | None = None
        try:
            if case.change:
                changes = ChangeSet.apply(
                    case.scan_root, pick_changed(case.library, case.change), self.change_backup
                )
            spec = {
                "key": case.key,
                "kind": case.kind,
                "unit": case.unit,
                "url": url,
                "root": str(case.scan_root),
                "library": f"bench-{case.size}",
                "covers_dir": str(work / "covers"),
                "data_dir": str(work / "data"),
                "workers": case.workers,
            }
            if profile_dir is not None:
                spec["profile_dir"] = str(profile_dir)
                spec["profile_name"] = case.variant
            probe = probe_ms()
            if case.cold and self.cold is not None:
                await asyncio.to_thread(self.cold.drop)
            result = await asyncio.to_thread(run_case_process, spec)
            result["probe_ms"] = probe
            result["cold"] = case.cold
            if changes is not None:
                result["changed_files"] = len(changes.entries)
            return result
        finally:
            if changes is not None:
                changes.restore()
            await self.db.drop(name)
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def snapshot(self, case: Case) -> dict[str, Any]:
        """A first scan kept as the template of this library's rescans (also warms the cache)."""
        self.counter += 1
        name = f"{self.db.prefix}snap{self.counter}"
        url = await self.db.create(name, self.db.template)
        work = Path(tempfile.mkdtemp(prefix="shelfscan-bench-"))
        try:
            spec = {
                "key": f"warm-up {case.size} ({case.family})",
                "kind": "reference" if case.family == "reference" else "scan",
                "unit": case.unit,
                "url": url,
                "root": str(case.scan_root),
                "library": f"bench-{case.size}",
                "covers_dir": str(work / "covers"),
                "data_dir": str(work / "data"),
            }
            result = await asyncio.to_thread(run_case_process, spec)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        self.snapshots[(case.scan_root, case.family)] = name
        return result


@dataclass(slots=True)
class ColdCache:
    """`echo 3 > /proc/sys/vm/drop_caches` before a cold case (root only; else a note why not)."""

    note: str = ""

    @classmethod
    def probe(cls) -> ColdCache | None:
        try:
            with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as handle:
                handle.write("1")  # the page cache only: cheap, and proves we may
        except OSError as exc:
            log(f"cold-cache cases skipped: cannot write /proc/sys/vm/drop_caches ({exc})")
            return None
        return cls()

    def drop(self) -> None:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as handle:
            handle.write("3")


async def run_benchmark(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    from shelfscan.testing.library import generate_library_cached

    cache: Path = args.cache
    sizes = sorted({args.books, *[s for s in args.sizes if 0 < s < args.books]})
    libraries: dict[int, Path] = {}
    started = time.perf_counter()
    restore_pending(cache / ".bench-changed")
    for size in sizes:
        log(f"library: {size:,} EPUBs (cached under {cache})")
        libraries[size] = await asyncio.to_thread(
            generate_library_cached, cache, books=size, seed=args.seed, jobs=args.jobs
        )
    audio = None
    if args.audio > 0:
        log(f"library: {args.audio:,} audiobooks")
        audio = await asyncio.to_thread(
            generate_library_cached,
            cache,
            books=max(50, args.audio // 5),
            audio=args.audio,
            seed=args.seed,
            jobs=args.jobs,
        )
    big: list[tuple[int, Path]] = []
    for size in args.big:
        log(f"library: {size:,} placeholders")
        big_lib = await asyncio.to_thread(
            generate_library_cached,
            cache,
            books=size,
            placeholders=True,
            seed=args.seed,
            jobs=args.jobs,
        )
        big.append((size, big_lib))
    epub_big = None
    if args.epub_big:
        cache.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - before any case runs
        free_gb = shutil.disk_usage(cache).free / 1e9
        need_gb = args.epub_big * 90_000 / 1e9 * 1.5  # ~86 KB an EPUB, and room to spare
        if free_gb < need_gb:
            log(
                f"skipping {args.epub_big:,} real EPUBs: {free_gb:.0f} GB free, {need_gb:.0f} needed"
            )
            args.epub_big_skipped = f"{free_gb:.0f} GB free, {need_gb:.0f} GB needed"
        else:
            log(f"library: {args.epub_big:,} EPUBs")
            epub_big = (
                args.epub_big,
                await asyncio.to_thread(
                    generate_library_cached,
                    cache,
                    books=args.epub_big,
                    seed=args.seed,
                    jobs=args.jobs,
                ),
            )
    small_cli_lib = None
    if args.small_cli:
        small_cli_lib = await asyncio.to_thread(
            generate_library_cached, cache, books=1, audio=args.small_cli, seed=args.seed, jobs=1
        )
    generated_s = time.perf_counter() - started
    library_info = {size: describe_library(lib) for size, lib in libraries.items()}

    db = Database(admin_url)
    cold = ColdCache.probe() if args.cold else None
    runner = Runner(db, cache, cache / ".bench-changed", cold=cold)
    cases = plan_cases(
        libraries,
        audio,
        big,
        args.change_fraction,
        epub_big=epub_big,
        cold=cold is not None,
        big_rounds=args.big_rounds,
    )
    small_runs: list[dict[str, Any]] = []
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    noise: list[dict[str, Any]] = []
    warmups: dict[str, Any] = {}
    profiles: list[dict[str, Any]] = []
    try:
        await db.create_template()
        pg_version = await db.version()
        for case in cases:
            if (case.scan_root, case.family) not in runner.snapshots and any(
                not c.fresh and c.scan_root == case.scan_root and c.family == case.family
                for c in cases
            ):
                log(f"warm-up and snapshot: first scan of {case.scan_root} ({case.family})")
                warm = await runner.snapshot(case)
                warmups[f"{case.scan_root} ({case.family})"] = {
                    "seconds": warm["seconds"],
                    "counts": warm["counts"],
                }
        for cold_phase, rnd, order in round_orders(cases, args.rounds):
            probes = [probe_ms() for _ in range(5)]
            noise.append(
                {
                    "round": rnd + 1,
                    "cold": cold_phase,
                    "probe_ms": probes,
                    "median_ms": statistics.median(probes),
                }
            )
            log(
                f"{'cold ' if cold_phase else ''}round {rnd + 1}/{args.rounds}: "
                f"noise probe median {statistics.median(probes):.0f} ms"
            )
            for position, case in enumerate(order):
                result = await runner.run(case)
                result.update(round=rnd + 1, position=position + 1)
                runs[case.key].append(result)
                rate = result["items"] / result["seconds"] if result["seconds"] else 0.0
                log(
                    f"  {case.key:<22} {result['seconds']:8.3f} s  {rate:9,.0f} {case.unit}/s"
                    f"  (probe {result['probe_ms']:.0f} ms)"
                )
            if small_cli_lib is not None and not cold_phase:
                small = await asyncio.to_thread(smallcli.measure, small_cli_lib / "audiobooks", 1)
                for run in small["runs"]:
                    run.update(round=rnd + 1, probe_ms=probe_ms())
                    small_runs.append(run)
                    log(
                        f"  small CLI ({run['files']} audio files): first scan "
                        f"{run['first_wall_s']:.3f} s wall, rescan {run['rescan_wall_s']:.3f} s"
                    )
        report = build_report(args, cases, runs, noise, warmups, pg_version, generated_s)
        report["libraries"] = {str(size): info for size, info in library_info.items()}
        report["small_cli"] = smallcli.summarise(small_runs) if small_runs else None
        report["cold"] = {
            "enabled": cold is not None,
            "note": "echo 3 > /proc/sys/vm/drop_caches (after sync) before each cold case"
            if cold is not None
            else ("not asked for (--no-cold)" if not args.cold else "not permitted here"),
        }
        if getattr(args, "epub_big_skipped", None):
            report["epub_big_skipped"] = args.epub_big_skipped
        report["targets"] = evaluate_targets(report, args)
        wanted = profile_cases(report, cases, args)
        if wanted and importlib.util.find_spec("pyinstrument") is None:
            log("not profiling: pyinstrument is missing (pip install -e '.[bench]')")
            report["profile_error"] = "pyinstrument is not installed"
            wanted = []
        for case in wanted:
            log(f"profiling {case.key} (pyinstrument)")
            try:
                if cold is not None and any(c.cold for c in cases):
                    await runner.run(case)  # untimed: re-warm what the cold rounds dropped
                profiled = await runner.run(case, profile_dir=args.out)
            except BenchError as exc:  # the measurements stand without a profile
                log(f"profiling {case.key} failed: {exc}")
                report["profile_error"] = str(exc)[-1000:]
                continue
            if profiled.get("profile") is not None:
                profiled["profile"]["key"] = case.key
                profiled["profile"]["seconds_under_profiler"] = profiled["seconds"]
                profiles.append(profiled["profile"])
        report["profiles"] = profiles
        return report
    finally:
        await db.drop_all()
        restore_pending(cache / ".bench-changed")


def profile_cases(
    report: dict[str, Any], cases: list[Case], args: argparse.Namespace
) -> list[Case]:
    """The scans to profile: those behind a missed target (auto), or the first scan (always)."""
    if args.profile == "never":
        return []
    keys: list[str] = []
    for target in report["targets"]:
        if target["met"] is False or args.profile == "always":
            name = target["target"]
            if name.startswith(("first scan", "covers")):
                keys.append(f"default@{args.books}")
            elif name.startswith("audio"):
                keys.extend(c.key for c in cases if c.variant == "audio")
            elif name.startswith("no-change"):
                size, tree = name.split("(")[1].rstrip(")").split()[:2]  # "(10000 EPUBs)"
                keys.append(case_key("nochange", int(size), tree=tree))
            elif name.startswith("rescan"):
                keys.append(f"changed1@{args.books}")
            elif name.startswith("peak RSS"):
                keys.extend(case_key("placeholders", s, tree="placeholders") for s in args.big[-1:])
    if args.profile == "always":
        keys = [f"default@{args.books}"] + [k for k in keys if k.startswith("audio")]
    chosen = list(dict.fromkeys(keys))
    return [c for key in chosen for c in cases if c.key == key]

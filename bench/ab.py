"""`python -m bench.ab OLD [NEW]`: two shelfscan builds, interleaved, through their CLIs.

Why a second harness: "within 5% of before" is a claim about two commits, and on this
shared 2-core machine two runs an hour apart differ by more than 5%. Here both builds
scan the same generated library on one PostgreSQL, round after round, the order
alternating (A B, B A, ...), each run on a freshly migrated database; the verdict is the
geometric mean of the per-round ratios, which machine-wide drift cancels out of.

OLD and NEW are checkouts with a `.venv` (their own `bin/shelfscan`), e.g. a
`git worktree add /tmp/old <commit>` with `pip install -e`. Measured per run: the scan's
own `elapsed_s` (what the bench reports as throughput), wall time of the CLI process
(start-up included), machine busy CPU (/proc/stat: the CLI, its parse workers and
PostgreSQL together) and PostgreSQL's share of it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.database import Database, database_server
from bench.measure import machine_cpu

KINDS = ("first", "rescan")


@dataclass(frozen=True, slots=True)
class Run:
    build: str
    kind: str  # "first" or "rescan"
    round: int
    elapsed_s: float  # the scan's own figure (`scan --json`)
    wall_s: float  # the CLI process, start-up included
    cpu_s: float  # machine busy CPU during the run
    pg_cpu_s: float  # PostgreSQL's processes during the run


def _postgres_cpu() -> float:
    """CPU seconds of every postgres process alive, plus what it reaped (the backends)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if not stat[stat.index("(") + 1 : stat.rindex(")")].startswith("postgres"):
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return total / os.sysconf("SC_CLK_TCK")


def _busy() -> float:
    cpu = machine_cpu()
    return sum(cpu.values()) - cpu["idle"] - cpu["iowait"]


def _run(build: str, kind: str, rnd: int, cmd: list[str], env: dict[str, str]) -> Run:
    pg0, busy0, t0 = _postgres_cpu(), _busy(), time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    pg, busy = _postgres_cpu() - pg0, _busy() - busy0
    if done.returncode:
        raise SystemExit(f"{build} {kind} failed: {done.stderr.strip()[-500:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(build, kind, rnd, float(summary["elapsed_s"]), wall, busy - pg, pg)


async def _measure(args: argparse.Namespace, admin_url: str) -> list[Run]:
    builds = {"old": args.old, "new": args.new}
    db = Database(admin_url)
    runs: list[Run] = []
    try:
        for rnd in range(args.rounds):
            order = list(builds) if rnd % 2 == 0 else list(builds)[::-1]
            for build in order:
                exe = str(Path(builds[build]) / ".venv" / "bin" / "shelfscan")
                url = await db.create(f"{db.prefix}{build}", None)
                with tempfile.TemporaryDirectory(prefix="shelfscan-ab-") as data:
                    env = dict(
                        os.environ,
                        DATABASE_URL=url,
                        SHELFSCAN_DATA_DIR=data,
                        SHELFSCAN_LOG_LEVEL="warning",
                    )
                    migrate = [exe, "migrate"]
                    await asyncio.to_thread(
                        subprocess.run, migrate, env=env, check=True, capture_output=True
                    )
                    cmd = [exe, "scan", str(args.library), "--library", "ab", "--json"]
                    for kind in KINDS:
                        run = await asyncio.to_thread(_run, build, kind, rnd, cmd, env)
                        runs.append(run)
                        print(
                            f"round {rnd} {build:>3} {kind:>6}: elapsed {run.elapsed_s:.3f} s, "
                            f"wall {run.wall_s:.2f} s, CPU {run.cpu_s:.2f} s + PG {run.pg_cpu_s:.2f} s",
                            flush=True,
                        )
                await db.drop(f"{db.prefix}{build}")
    finally:
        await db.drop_all()
    return runs


def _geomean(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def summarise(runs: Sequence[Run]) -> dict[str, dict[str, dict[str, float]]]:
    """Per kind and measure: each build's median and the geometric mean of new/old per round."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in KINDS:
        old = sorted(
            (r for r in runs if r.kind == kind and r.build == "old"), key=lambda r: r.round
        )
        new = sorted(
            (r for r in runs if r.kind == kind and r.build == "new"), key=lambda r: r.round
        )
        out[kind] = {}
        for measure in ("elapsed_s", "wall_s", "cpu_s", "pg_cpu_s"):
            a = [getattr(r, measure) for r in old]
            b = [getattr(r, measure) for r in new]
            ratios = [y / x for x, y in zip(a, b, strict=True) if x > 0 and y > 0]
            out[kind][measure] = {
                "old_median": round(statistics.median(a), 3),
                "new_median": round(statistics.median(b), 3),
                "ratio_geomean": round(_geomean(ratios), 3) if ratios else float("nan"),
                "ratio_min": round(min(ratios), 3) if ratios else float("nan"),
                "ratio_max": round(max(ratios), 3) if ratios else float("nan"),
            }
    return out


def report(args: argparse.Namespace, summary: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [
        f"# A/B: {args.old_label} vs {args.new_label}",
        "",
        f"Library `{args.library}`, {args.rounds} interleaved rounds, fresh database per run.",
        "",
        "| scan | measure | old (median) | new (median) | new/old (geomean) | range |",
        "|---|---|---|---|---|---|",
    ]
    for kind, measures in summary.items():
        for measure, v in measures.items():
            lines.append(
                f"| {kind} | {measure} | {v['old_median']} | {v['new_median']} | "
                f"{v['ratio_geomean']} | {v['ratio_min']}-{v['ratio_max']} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ab", description=__doc__)
    parser.add_argument("old", type=Path, help="checkout of the build to compare against")
    parser.add_argument("new", type=Path, nargs="?", default=Path("."), help="(default: .)")
    parser.add_argument("--library", type=Path, required=True, help="folder to scan")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--out", type=Path, help="write the report (.md) and runs (.json) here")
    args = parser.parse_args(argv)
    args.old_label = _label(args.old)
    args.new_label = _label(args.new)
    with database_server(args.database_url) as admin_url:
        runs = asyncio.run(_measure(args, admin_url))
    summary = summarise(runs)
    text = report(args, summary)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".md").write_text(text)
        payload = {"summary": summary, "runs": [asdict(r) for r in runs]}
        args.out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    return 0


def _label(checkout: Path) -> str:
    """The checkout's commit, so a report says what it compared."""
    done = subprocess.run(
        ["git", "-C", str(checkout), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()[:72] or str(checkout)


if __name__ == "__main__":
    raise SystemExit(main())

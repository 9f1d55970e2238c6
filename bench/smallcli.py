"""Small libraries: the wall time of `shelfscan scan` on ~60 audio files, and where it goes.

Beets imports 60 files in ~0.67 s; a CLI scan of a library that small is mostly
start-up: the interpreter and imports, the embedded PostgreSQL (initdb only the
first time, then `pg_ctl start`), the migrations check, the pool, the parse pool,
and the server's stop at exit. Two measurements:

* `cli_wall`: the real command (`python -m shelfscan scan --json DIR`) as a user runs
  it, wall clock from spawn to exit, on an embedded database initialised beforehand
  (first scan into an empty catalogue, then a no-change rescan);
* `phases`: the same steps in one process with a clock around each (`python -m
  bench.smallcli PHASES_JSON DATA_DIR DIR`), so the report says which one to cut.

Both run with bytecode: the package is compiled once (`compileall`) and
PYTHONDONTWRITEBYTECODE is dropped from the environment. An installed shelfscan (the
wheel, the Docker image) has its .pyc files; a checkout run with that variable set
(as in the development environment) recompiles ~100 modules at every start, ~0.3 s
that no user pays, and would make start-up look twice as slow as it is.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import REPO


def _env(data_dir: Path) -> dict[str, str]:
    drop = ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")  # the embedded server; .pyc files
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        SHELFSCAN_DATA_DIR=str(data_dir),
        SHELFSCAN_LOG_LEVEL="warning",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p),
    )
    return env


def _cli_scan(data_dir: Path, root: Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "shelfscan", "scan", "--json", str(root)],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"shelfscan scan failed: {proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def _phases(data_dir: Path, root: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.smallcli", "phases", str(data_dir), str(root)],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"phases failed: {proc.stderr[-2000:]}")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def compile_bytecode() -> None:
    """Write the .pyc files an installed package ships with (see the module docstring)."""
    import shelfscan

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(shelfscan.__file__).parent)],
        env=_env(Path(tempfile.gettempdir())),
        capture_output=True,
        timeout=300,
        check=False,  # a read-only install has its .pyc already
    )


def measure(root: Path, rounds: int) -> dict[str, Any]:
    """Each round: a fresh, initialised embedded database; a first scan, then a rescan."""
    compile_bytecode()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="shelfscan-bench-small-") as tmp:
        os.chmod(tmp, 0o755)  # pgserver runs postgres as its own user when we are root
        for rnd in range(rounds):
            data = Path(tmp) / f"data{rnd}"
            started = time.perf_counter()
            init_env = _env(data)
            # `shelfscan migrate` initialises the folder (initdb) and the schema: not timed.
            subprocess.run(
                [sys.executable, "-m", "shelfscan", "migrate"],
                env=init_env,
                capture_output=True,
                check=True,
                timeout=300,
            )
            init_s = time.perf_counter() - started
            first_s, first = _cli_scan(data, root)
            rescan_s, rescan = _cli_scan(data, root)
            phases = _phases(data, root)
            runs.append(
                {
                    "init_s": round(init_s, 3),
                    "first_wall_s": round(first_s, 3),
                    "first_elapsed_s": first["elapsed_s"],
                    "first_books": first["books_added"],
                    "rescan_wall_s": round(rescan_s, 3),
                    "rescan_elapsed_s": rescan["elapsed_s"],
                    "files": first["files_seen"],
                    "phases": phases,
                }
            )
            shutil.rmtree(data, ignore_errors=True)
    return {"runs": runs}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds, and the median of each phase."""
    import statistics

    def med(key: str) -> float:
        return round(float(statistics.median(r[key] for r in runs)), 3)

    names = list(runs[0]["phases"])
    return {
        "files": runs[0]["files"],
        "first_wall_s": med("first_wall_s"),
        "first_wall_min_s": round(min(r["first_wall_s"] for r in runs), 3),
        "rescan_wall_s": med("rescan_wall_s"),
        "rescan_wall_min_s": round(min(r["rescan_wall_s"] for r in runs), 3),
        "init_s": med("init_s"),
        "phases": {n: round(statistics.median(r["phases"][n] for r in runs), 4) for n in names},
        "runs": runs,
    }


def phases_main(data_dir: Path, root: Path) -> int:
    """The CLI's steps one by one, each timed (a rescan: the catalogue holds the library).

    In the CLI's order: the command's modules import while the embedded server boots
    (`while_starting`), so `ready_wait` is what is left of the boot after them."""
    marks: dict[str, float] = {}
    t0 = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal t0
        now = time.perf_counter()
        marks[name] = round(now - t0, 4)
        t0 = now

    import asyncio
    import importlib

    from shelfscan import cli  # what `shelfscan` imports before it does anything
    from shelfscan.config import Settings
    from shelfscan.db.connect import open_pool
    from shelfscan.db.embedded import embedded_postgres
    from shelfscan.db.migrate import migrate
    from shelfscan.logs import configure_logging

    mark("imports")
    cli._tune_gc()
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)

    def command_imports() -> None:
        mark("embedded_start")
        for name in cli._COMMAND_MODULES["scan"]:
            importlib.import_module(name)
        mark("command_imports")

    async def scan(url: str) -> None:
        from shelfscan.app import make_executor, run_scan_job, scanner_for
        from shelfscan.catalogue.libraries import ensure_library
        from shelfscan.scan.contract import ScanRequest

        async with open_pool(url, max_size=settings.workers + 4) as pool:
            mark("pool_start")
            await migrate(url, pool)
            mark("migrations_check")
            library = await ensure_library(pool, root.name, [root])
            executor = make_executor(settings)
            try:
                scanner = scanner_for(pool, settings, executor, settings.workers)
                mark("library_and_executor")
                await run_scan_job(pool, scanner, ScanRequest.whole(library), settings)
                mark("scan")
            finally:
                executor.close()
                mark("parse_pool_close")
        mark("pool_close")

    with embedded_postgres(data_dir, while_starting=command_imports) as url:
        mark("ready_wait")
        asyncio.run(scan(url))
    mark("embedded_stop")
    print(json.dumps(marks))
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "phases":
        raise SystemExit(phases_main(Path(sys.argv[2]), Path(sys.argv[3])))
    print("usage: python -m bench.smallcli phases DATA_DIR LIBRARY_DIR", file=sys.stderr)
    raise SystemExit(2)

"""pyinstrument profiles of a scan and of the parse stage, as hotspot tables."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.common import BenchError

# --- profiling -----------------------------------------------------------------------------------


def _start_profiler() -> Any:
    try:
        from pyinstrument import Profiler
    except ImportError as exc:
        raise BenchError("profiling needs pyinstrument: pip install -e '.[bench]'") from exc
    profiler = Profiler(interval=0.001, async_mode="enabled")
    profiler.start()
    return profiler


def _finish_profiles(profiler: Any, spec: dict[str, Any], root: Path) -> dict[str, Any]:
    """Write the scan's profile, then profile the parse stage serially (what workers run)."""
    session = profiler.stop()
    out = Path(spec["profile_dir"])
    name = spec.get("profile_name", "first-scan")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"profile-{name}.txt").write_text(
        profiler.output_text(unicode=True, color=False), encoding="utf-8"
    )
    result: dict[str, Any] = {
        "name": name,
        "files": [f"profile-{name}.txt"],
        "main": hotspots(session.root_frame(), session.duration),
        "main_inclusive": inclusive(session.root_frame(), session.duration),
        "main_seconds": round(session.duration, 3),
        "main_cpu_seconds": round(float(getattr(session, "cpu_time", 0.0) or 0.0), 3),
    }
    try:
        parse_file = out / f"profile-{name}-parse.txt"
        result["parse"], result["parse_seconds"], result["parse_files"] = _profile_parse(
            root, int(spec.get("profile_parse_files", 1000)), parse_file
        )
        result["files"].append(parse_file.name)
    except Exception as exc:  # the internals it uses may move; the scan profile still counts
        result["parse_error"] = f"{type(exc).__name__}: {exc}"
    return result


def _profile_parse(root: Path, limit: int, out: Path) -> tuple[list[dict[str, Any]], float, int]:
    """pyinstrument over `parse_units` in this process, in chunks of 50 as the pool gets them.

    The covers go to a fresh temporary folder, as the measured scans' covers do."""
    from pyinstrument import Profiler

    from shelfscan.scan.discovery import walk_root
    from shelfscan.scan.parse import ParseTask, UnitTask, parse_units

    files = walk_root(0, str(root)).files[:limit]
    tasks = [
        UnitTask(i, (ParseTask(0, str(root / f.path), f.size, f.mtime_ns),))
        for i, f in enumerate(files)
    ]
    with tempfile.TemporaryDirectory(prefix="shelfscan-bench-covers-") as covers:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for i in range(0, len(tasks), 50):
            parse_units(tasks[i : i + 50], covers)
        session = profiler.stop()
    out.write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
    return hotspots(session.root_frame(), session.duration), round(session.duration, 3), len(files)


_WAITS = ("[await]", "epoll.poll", "select.select", "EpollSelector.select", "lock.acquire")


def hotspots(root: Any, total: float, top: int = 15) -> list[dict[str, Any]]:
    """Self time per file:function, biggest first, with its share of the profiled time.

    Waiting (an `await`, the event loop's poll, a lock) is summed into one "waiting" row:
    what is left is where the process spent CPU (or a blocking system call)."""
    spent: dict[str, float] = defaultdict(float)

    def visit(frame: Any, parent: Any) -> None:
        if frame.is_synthetic:
            owner = parent or frame
            label = "" if frame.function == "[self]" else f" {frame.function}"
            spent[f"{owner.file_path_short}:{owner.function}{label}"] += frame.time
            return
        if not frame.children:
            spent[f"{frame.file_path_short}:{frame.function}"] += frame.time
        for child in frame.children:
            visit(child, frame)

    if root is not None:
        visit(root, None)
    waiting = sum(sec for where, sec in spent.items() if any(w in where for w in _WAITS))
    ranked = sorted(
        ((w, sec) for w, sec in spent.items() if not any(x in w for x in _WAITS)),
        key=lambda kv: kv[1],
        reverse=True,
    )[:top]
    rows = [("waiting (await, event-loop poll, locks)", waiting), *ranked]
    return [
        {"where": where, "seconds": round(sec, 3), "share": round(sec / total, 3) if total else 0.0}
        for where, sec in rows
    ]


def inclusive(root: Any, total: float, top: int = 15) -> list[dict[str, Any]]:
    """Time under each shelfscan function (children included, recursion counted once)."""
    spent: dict[str, float] = defaultdict(float)

    def visit(frame: Any, stack: frozenset[str]) -> None:
        if frame.is_synthetic:
            return
        key = f"{frame.file_path_short}:{frame.function}"
        if "shelfscan/" in (frame.file_path or "") and key not in stack:
            spent[key] += frame.time
            stack = stack | {key}
        for child in frame.children:
            visit(child, stack)

    if root is not None:
        visit(root, frozenset())
    ranked = sorted(spent.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [
        {"where": where, "seconds": round(sec, 3), "share": round(sec / total, 3) if total else 0.0}
        for where, sec in ranked
    ]

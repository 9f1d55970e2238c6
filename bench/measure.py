"""What a case costs: /proc accounting of CPU and memory, and the noise probe.

Why /proc: the parse pool's workers are forked by the forkserver, whose rusage reaches
us only when it exits; PostgreSQL's time is the utime+stime of the postmaster and all its
processes, found through `pg_backend_pid()`.
"""

from __future__ import annotations

import os
import resource
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bench.common import PROBE_LOOPS

# --- /proc accounting ----------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, CPU seconds of the process plus its reaped children)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        rest = data[data.rindex(b")") + 2 :].split()
        ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
        table[int(entry.name)] = (int(rest[1]), ticks / _CLK_TCK)
    return table


def process_tree(table: dict[int, tuple[int, float]], root: int) -> list[int]:
    """`root` and all its live descendants."""
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            found.append(pid)
            stack.extend(children[pid])
    return found


def tree_cpu(table: dict[int, tuple[int, float]], root: int) -> float:
    """CPU seconds of a process tree; a child reaped inside the tree stays counted by its parent."""
    return sum(table[pid][1] for pid in process_tree(table, root))


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM), in MB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_cpu() -> dict[str, float]:
    """Seconds of all CPUs by state since boot (/proc/stat), to tell idle from busy from stolen."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = handle.readline().split()[1:]
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return {name: int(value) / _CLK_TCK for name, value in zip(names, fields, strict=False)}


def machine_share(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Share of all the machine's CPU time between two readings: busy, iowait, steal."""
    delta = {k: after[k] - before[k] for k in before}
    total = sum(delta.values()) or 1.0
    idle = delta["idle"] + delta["iowait"]
    return {
        "busy_s": round(total - idle, 2),
        "busy": round(1 - idle / total, 3),
        "iowait": round(delta["iowait"] / total, 3),
        "steal": round(delta.get("steal", 0.0) / total, 3),
        "system": round((delta["system"] + delta["irq"] + delta["softirq"]) / total, 3),
    }


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def postmaster_pid(url: str) -> int | None:
    """The postmaster of the server behind `url`, when it runs on this machine and /proc shows it.

    The backend's process title names its database: that guards against a server in a
    container whose pids mean something else here."""
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        database = str(await conn.fetchval("SELECT current_database()"))
        return _postmaster_of(backend, database)  # while the backend is alive
    finally:
        await conn.close()


def _postmaster_of(backend: int, database: str) -> int | None:
    try:
        cmdline = Path(f"/proc/{backend}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if database not in cmdline:
            return None
        ppid = proc_table().get(backend, (0, 0.0))[0]
        comm = Path(f"/proc/{ppid}/comm").read_text().strip()
    except OSError:
        return None
    return ppid if ppid > 1 and ("postgres" in comm or "postmaster" in comm) else None


@dataclass(frozen=True, slots=True)
class CpuMark:
    """A point in time: wall clock and CPU of this process, its tree and PostgreSQL."""

    wall: float
    main: float
    tree: float
    pg: float | None
    machine: dict[str, float]

    @classmethod
    def take(cls, pg_pid: int | None) -> CpuMark:
        table = proc_table()
        return cls(
            time.perf_counter(),
            _self_cpu(),
            tree_cpu(table, os.getpid()),
            tree_cpu(table, pg_pid) if pg_pid else None,
            machine_cpu(),
        )


# --- the noise probe -----------------------------------------------------------------------------


def probe_ms(loops: int = PROBE_LOOPS) -> float:
    """A fixed pure-Python loop; its time tracks how much CPU the host gives us right now."""
    started = time.perf_counter()
    total = 0
    for i in range(loops):
        total += i * i % 7
    elapsed = (time.perf_counter() - started) * 1000
    assert total >= 0
    return round(elapsed, 1)

"""Counting the processes a test started, by a marker in their environment.

Orphans are re-parented to PID 1, so a process tree says nothing once their
parent is killed; the environment is inherited by every descendant (the
forkserver, the resource tracker, the parse workers) and survives re-parenting.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

MARK = "SHELFSCAN_TEST_MARK"


def new_mark() -> dict[str, str]:
    """An environment entry unique to one test's processes."""
    return {MARK: uuid.uuid4().hex}


def live_pids() -> list[int]:
    """PIDs of every process that is not a zombie (a killed child not yet reaped is no process)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            state = stat[stat.rindex(b")") + 2 : stat.rindex(b")") + 3]
            if state not in (b"Z", b"X"):
                pids.append(int(entry.name))
    return pids


def marked(env: dict[str, str]) -> list[int]:
    """PIDs of the live processes (this one aside) whose environment carries `env`'s marker."""
    needle = f"{MARK}={env[MARK]}\0".encode()
    found = []
    for pid in live_pids():
        if pid == os.getpid():
            continue
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes() + b"\0":
                found.append(pid)
        except OSError:
            continue
    return found


def wait_for(check: object, timeout: float, what: str) -> None:
    """Poll `check()` until it is true; fail naming `what` after `timeout` seconds."""
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g} s")
        time.sleep(0.1)

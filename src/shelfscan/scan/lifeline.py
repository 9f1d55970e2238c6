"""Parse workers die with the process that owns them.

A forkserver worker's parent is the forkserver, not the scan, and every worker
holds the forkserver's "alive" pipe and the resource tracker's pipe open. So
when a scan or daemon is killed with SIGKILL, nothing tells its workers, and
they in turn keep the forkserver and the resource tracker alive: a whole set
of processes orphaned for good. Each worker therefore watches its owner and
exits as soon as the owner is gone; the forkserver and the tracker then see
their pipes close and exit by themselves.

Two guards, both set up in the worker's initializer:
- PR_SET_PDEATHSIG (Linux): SIGKILL when the worker's parent (the forkserver,
  or the owner itself for a fork-started pool) dies;
- a watch thread on the owner's pid (a pidfd where the kernel has them, a
  poll of the pid otherwise), since the forkserver can outlive the owner.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys
import threading
import time

_PR_SET_PDEATHSIG = 1
POLL_INTERVAL_S = 0.5  # only where pidfds are missing (kernels before 5.3, other systems)


def die_with(owner_pid: int) -> None:
    """Initializer of a parse worker: exit when the process `owner_pid` exits.

    Never raises: a pool whose initializer fails is broken for every file.
    """
    _set_parent_death_signal()
    if not _alive(owner_pid):
        os._exit(1)  # the owner died before this worker got going
    threading.Thread(
        target=_watch, args=(owner_pid,), name="shelfscan-lifeline", daemon=True
    ).start()


def _set_parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _watch(owner_pid: int) -> None:
    if not _wait_on_pidfd(owner_pid):
        while _alive(owner_pid):
            time.sleep(POLL_INTERVAL_S)
    os._exit(1)


def _wait_on_pidfd(pid: int) -> bool:
    """Block until `pid` exits; False when this system cannot wait that way."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except (OSError, AttributeError):
        return False
    try:
        # A pidfd turns readable when its process exits: no polling, no pid reuse.
        select.select([pidfd], [], [])
    except OSError:
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

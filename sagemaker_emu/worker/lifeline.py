"""A worker never outlives the emulator, however either of them stops.

Two mechanisms, because each misses a case of the other:
- Linux's parent-death signal: the kernel sends SIGKILL to the worker when the thread that
  started it exits (the fleet starts every worker from one thread that lives as long as the
  server, `fleet/instance.py`). It reaches a worker that cannot run any code of its own,
  such as one stopped by SIGSTOP.
- A thread that polls the parent pid, for systems without that signal.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

PARENT_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1


def kill_me_with_parent(signum: int = signal.SIGKILL) -> None:
    """Ask the kernel for `signum` when our parent goes (Linux; elsewhere nothing happens).
    Safe in a child between fork and exec: no allocation beyond the loaded libc."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl(
                _PR_SET_PDEATHSIG, signum, 0, 0, 0)
        except (OSError, AttributeError):
            pass


def hold(parent_pid: int) -> None:
    """Die with `parent_pid`: the kernel's signal, and a polling thread besides."""
    kill_me_with_parent()
    if os.getppid() != parent_pid:  # it died before the signal was armed
        os._exit(0)

    def loop() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(0)
            time.sleep(PARENT_POLL_S)

    threading.Thread(target=loop, daemon=True, name="parent-watch").start()

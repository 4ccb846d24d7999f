"""Run a user's container command so that it can never outlive the emulator.

`python -m sagemaker_emu.worker.guard -- <command...>` starts the command in its own
process group, passes SIGTERM on, and kills the whole group when the emulator (our parent)
disappears, however it died.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sagemaker_emu.worker import lifeline

POLL_S = 0.5


def main(argv: list[str]) -> int:
    if argv[:1] == ["--"]:
        argv = argv[1:]
    # The emulator says who it is: read from getppid() alone, a parent that died before this line
    # would leave init as "the parent", and the guard would never see it go.
    parent = int(os.environ.get("SAGEMAKER_EMU_PARENT_PID") or os.getppid())
    asked: list[int] = []
    child: subprocess.Popen | None = None

    def stop(signum, frame):  # the first asks the command's group to stop; the next one kills it
        asked.append(signum)
        if child is not None:
            try:
                os.killpg(child.pid, signal.SIGTERM if len(asked) == 1 else signal.SIGKILL)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)  # before anything can send it: no window of the default action
    signal.signal(signal.SIGINT, stop)
    # SIGTERM, not SIGKILL, when the emulator goes: the guard lives on to kill the command's whole
    # group (the command's own children too), which the kernel's signal to the command alone misses.
    lifeline.kill_me_with_parent(signal.SIGTERM)
    if os.getppid() != parent or asked:  # it died, or stopped us, before the command started
        return 1
    # This process has one thread, so a preexec_fn is safe: the command dies with us too.
    child = subprocess.Popen(argv, start_new_session=True, preexec_fn=lifeline.kill_me_with_parent)
    if asked:  # a stop that came while it started: passed on now
        os.killpg(child.pid, signal.SIGTERM if len(asked) == 1 else signal.SIGKILL)
    while child.poll() is None:
        if os.getppid() != parent:
            kill_session(child.pid)
            break
        time.sleep(POLL_S)
    code = child.wait()
    if os.getppid() != parent:
        kill_session(child.pid)  # what the command left behind, in its session
    return code


def kill_session(sid: int) -> None:
    """SIGKILL every process of session `sid` (the command started one: it is its leader). A
    process group is not enough: a command's children may make groups of their own."""
    try:
        os.killpg(sid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
                os.kill(int(entry), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

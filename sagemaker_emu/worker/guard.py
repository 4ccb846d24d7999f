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
    parent = os.getppid()
    # SIGTERM, not SIGKILL, when the emulator goes: the guard lives on to kill the command's whole
    # group (the command's own children too), which the kernel's signal to the command alone misses.
    lifeline.kill_me_with_parent(signal.SIGTERM)
    # This process has one thread, so a preexec_fn is safe: the command dies with us too.
    child = subprocess.Popen(argv, start_new_session=True, preexec_fn=lifeline.kill_me_with_parent)

    asked = []

    def stop(signum, frame):  # the first asks the command's group to stop; the next one kills it
        asked.append(signum)
        try:
            os.killpg(child.pid, signal.SIGTERM if len(asked) == 1 else signal.SIGKILL)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while child.poll() is None:
        if os.getppid() != parent:
            try:
                os.killpg(child.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            break
        time.sleep(POLL_S)
    return child.wait()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The worker template: one process per emulator that has imported what workers run and forks
each built-in or toolkit instance worker on request (`fleet/spawn.py` is the other side).

A worker started by `python -m sagemaker_emu.worker` spends ~0.1 s of CPU importing the same
modules, and holds its own copy of them; a fork shares the template's pages until it writes
them (the collector's pages stay shared too: `gc.freeze`).

Protocol, JSON lines over the socket the emulator passes as argv[1]:
    -> {"id": 7, "kind": "llm-sim", "env": {...}, "cwd": "...", "log": "..."}
    <- {"id": 7, "pid": 12345}            or {"id": 7, "error": "..."}
    <- {"exited": 12345, "code": -9}      (a worker ended: its exit status, as Popen gives it)

The template dies with the emulator (parent-death signal, and a check of its parent each
turn of the loop), and each worker with the template, as `worker/lifeline.py` describes; a
worker's process group is its own, so the emulator stops it as it stops any worker. The loop
is single-threaded on purpose: fork copies only the calling thread.
"""

from __future__ import annotations

import gc
import io
import json
import os
import select
import signal
import socket
import sys
import traceback

from sagemaker_emu.worker import lifeline

POLL_S = 0.5  # how often the template checks that the emulator is still there


def preload() -> None:
    """Import what every worker imports, so that forks share it."""
    import sagemaker_emu.worker.__main__  # noqa: F401 - the worker's entry point and its server
    import sagemaker_emu.worker.builtin.echo  # noqa: F401
    import sagemaker_emu.worker.builtin.llm_sim  # noqa: F401
    import sagemaker_emu.worker.multi_model  # noqa: F401
    import sagemaker_emu.worker.pipeline  # noqa: F401
    import sagemaker_emu.worker.toolkit  # noqa: F401


def main(argv: list[str]) -> int:
    parent = int(os.environ["SAGEMAKER_EMU_PARENT_PID"])
    lifeline.kill_me_with_parent()
    if os.getppid() != parent:
        return 0
    channel = socket.socket(fileno=int(argv[0]))
    preload()
    gc.freeze()  # what exists now is never scanned again: its pages stay shared after a fork
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # only to wake the loop
    pending = b""
    while os.getppid() == parent:
        ready, _, _ = select.select([channel.fileno(), wake_r], [], [], POLL_S)
        if wake_r in ready:
            os.read(wake_r, 4096)
        _reap(channel)
        if channel.fileno() in ready:
            data = channel.recv(1 << 20)
            if not data:
                return 0  # the emulator closed its end
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    _fork(channel, json.loads(line), (wake_r, wake_w))
    return 0


def _send(channel: socket.socket, message: dict) -> None:
    channel.sendall(json.dumps(message).encode() + b"\n")


def _reap(channel: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _send(channel, {"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def _fork(channel: socket.socket, request: dict, wake: tuple[int, int]) -> None:
    try:
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        _send(channel, {"id": request["id"], "error": f"cannot open the log {request['log']}: {exc}"})
        return
    pid = os.fork()
    if pid == 0:
        os._exit(_worker(request, log, [channel.fileno(), *wake]))
    os.close(log)
    _send(channel, {"id": request["id"], "pid": pid})


def _worker(request: dict, log: int, inherited: list[int]) -> int:
    """In the child: become what `python -m sagemaker_emu.worker <kind>` would be."""
    code = 1
    try:
        os.setsid()  # its own process group, as start_new_session gives a spawned worker
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in inherited:
            os.close(fd)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(devnull)
        os.close(log)
        # unbuffered, as PYTHONUNBUFFERED makes a spawned worker's output
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["SAGEMAKER_EMU_PARENT_PID"] = str(os.getppid())  # its parent is the template
        from sagemaker_emu.worker.__main__ import main as worker_main

        sys.argv = ["sagemaker_emu.worker", request["kind"]]
        code = worker_main([request["kind"]])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # noqa: S110 - exiting anyway
            pass
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

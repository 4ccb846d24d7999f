"""How and where instance processes start (a `Launcher`). On this machine (`Local`): spawned
(`python -m sagemaker_emu.worker <kind>`, or a container's command under the worker guard), or
forked from the worker template (`worker/template.py`) when `--worker-start fork` (the default
on Linux) and the worker is one of ours (a built-in image or a toolkit inference.py). On a Ray
cluster: `fleet/ray_nodes.py`.

Every way gives the fleet a `Process`: Popen's `pid`, `returncode`, `poll()` and `wait()`, and
`signal_group` for the process group each worker leads.

Every process is started from one thread that lives as long as the server: Linux's
parent-death signal (worker/lifeline.py) fires when the *thread* that started a process
exits, and lifecycle threads are short-lived.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("sagemaker_emu.fleet")

FORK, EXEC = "fork", "exec"
METHODS = (FORK, EXEC)
CAN_FORK = sys.platform.startswith("linux")  # the template relies on Linux's parent-death signal
TEMPLATE_START_TIMEOUT_S = 30.0

_SPAWNER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="worker-spawner")


class Process(Protocol):
    """A worker process wherever it runs: Popen's reading side, and how to stop it."""

    pid: int
    node: str | None  # the Ray node it runs on; None on this machine

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...

    def signal_group(self, signum: int) -> None:
        """Send `signum` to the worker's process group (it leads its own)."""

    def close(self) -> None:
        """It has exited or been replaced: let go of what held it (a Ray actor)."""


@dataclass(frozen=True)
class Started:
    process: Process
    host: str  # where its container contract answers
    port: int


@dataclass(frozen=True)
class Slot:
    """Where an inference-component copy runs: its host instance (a name unique in the
    emulator) of `instance_type`, and the room the copy reserves there."""

    host: str
    instance_type: str
    accelerators: float
    memory_mb: int
    cpus: float


class Launcher(Protocol):
    """Where and how instance processes start: on this machine (`Local`) or on a Ray
    cluster's nodes (`fleet/ray_nodes.py`)."""

    def check(self, instance_type: str) -> str | None:
        """Why no instance of `instance_type` can run here, or None."""

    def start(self, argv: list[str], env: dict[str, str], cwd: str | None, log_path: Path, kind: str | None,
              instance_type: str, slot: Slot | None = None) -> Started:
        """Start a worker. `kind` (a built-in image, or "toolkit") may be forked from the
        template; `slot`: an inference-component copy runs on its host instance, in its room."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Local:
    """Workers on this machine, on 127.0.0.1: forked from the template (`fork`: built-in and
    toolkit workers, on Linux) or spawned."""

    def __init__(self, method: str = FORK) -> None:
        self.method = method

    def check(self, instance_type: str) -> str | None:
        return None

    def start(self, argv: list[str], env: dict[str, str], cwd: str | None, log_path: Path, kind: str | None,
              instance_type: str, slot: Slot | None = None) -> Started:
        port = free_port()
        env = {**os.environ, **env, "SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_EMU_PARENT_PID": str(os.getpid())}
        if self.method == FORK and kind is not None and CAN_FORK:
            process: Process = _SPAWNER.submit(lambda: _template().fork(kind, env, cwd or os.getcwd(),
                                                                        os.fspath(log_path))).result()
        else:
            with open(log_path, "ab") as out:
                process = _SPAWNER.submit(Spawned, argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True).result()
        return Started(process, "127.0.0.1", port)


class Spawned(subprocess.Popen):
    """A spawned worker: Popen, stopped by its process group."""

    node: str | None = None

    def signal_group(self, signum: int) -> None:
        _killpg(self.pid, signum)

    def close(self) -> None:
        pass


def _killpg(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


class Forked:
    """A worker the template forked: the emulator is not its parent, so the template tells
    when it exits and with what status."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.node: str | None = None
        self._code: int | None = None
        self._done = threading.Event()

    @property
    def returncode(self) -> int | None:
        return self._code

    def poll(self) -> int | None:
        return self._code

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        assert self._code is not None
        return self._code

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def signal_group(self, signum: int) -> None:
        if self._code is None:  # not after it ended: its pid may be another process's by then
            _killpg(self.pid, signum)

    def close(self) -> None:
        pass

    def ended(self, code: int) -> None:
        self._code = code
        self._done.set()


class Template:
    """The emulator's side of the template: its process, the socket to it, and a thread
    reading its answers and the exits it reports."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = {**os.environ, "SAGEMAKER_EMU_PARENT_PID": str(os.getpid())}
        self.process = subprocess.Popen([sys.executable, "-m", "sagemaker_emu.worker.template", str(theirs.fileno())],
                                        env=env, stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),),
                                        start_new_session=True)
        theirs.close()
        self._channel = ours
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[int, concurrent.futures.Future] = {}
        self._live: dict[int, Forked] = {}
        self.closed = False
        threading.Thread(target=self._read, daemon=True, name="worker-template").start()

    def fork(self, kind: str, env: dict[str, str], cwd: str, log_path: str) -> Forked:
        answer: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            if self.closed:
                raise OSError("the worker template has exited")
            number = next(self._ids)
            self._waiting[number] = answer
        request = {"id": number, "kind": kind, "env": env, "cwd": cwd, "log": log_path}
        try:
            self._channel.sendall(json.dumps(request).encode() + b"\n")
        except OSError:
            with self._lock:
                self._waiting.pop(number, None)
            raise
        try:
            reply: dict[str, Any] = answer.result(TEMPLATE_START_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            with self._lock:  # a worker forked after this is nobody's: `_message` stops it
                self._waiting.pop(number, None)
            raise OSError(f"the worker template did not fork within {TEMPLATE_START_TIMEOUT_S:g} s") from None
        if "error" in reply:
            raise OSError(reply["error"])
        return reply["process"]

    def _read(self) -> None:
        buffered = b""
        try:
            while True:
                data = self._channel.recv(1 << 16)
                if not data:
                    break
                buffered += data
                *lines, buffered = buffered.split(b"\n")
                for line in lines:
                    self._message(json.loads(line))
        except OSError:
            pass
        finally:
            self._gone()

    def _message(self, message: dict[str, Any]) -> None:
        with self._lock:
            if "exited" in message:
                process = self._live.pop(message["exited"], None)
                if process is not None:
                    process.ended(message["code"])
                return
            answer = self._waiting.pop(message["id"], None)
            if "pid" in message:
                message["process"] = self._live[message["pid"]] = Forked(message["pid"])
        if answer is not None:
            answer.set_result(message)
        elif "pid" in message:  # its caller gave up waiting: no one would ever stop it
            message["process"].kill()

    def _gone(self) -> None:
        """The template exited: its workers die with it (parent-death signal); say so."""
        with self._lock:
            self.closed = True
            live, self._live = list(self._live.values()), {}
            waiting, self._waiting = list(self._waiting.values()), {}
        for process in live:
            process.ended(-9)
        for answer in waiting:
            answer.set_result({"error": "the worker template exited"})
        self._channel.close()
        log.warning("the worker template exited; the next worker starts a new one")


_current: Template | None = None


def _template() -> Template:
    """The template, started on first use (on the spawner thread, which it must die with),
    and again if it exited."""
    global _current
    if _current is None or _current.closed:
        _current = Template()
    return _current

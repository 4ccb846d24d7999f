"""One instance: its process (or remote URL), port, model directory, log, health and load."""

from __future__ import annotations

import enum
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlparse

from sagemaker_emu.fleet import container, spawn
from sagemaker_emu.fleet.connections import ConnectionPool
from sagemaker_emu.fleet.images import Launch
from sagemaker_emu.fleet.kv_sync import KvSync
from sagemaker_emu.kv.index import KvIndex
from sagemaker_emu.worker.contract import EXIT_PORT_TAKEN
from sagemaker_emu.fleet.load import Load

PING_TIMEOUT_S = 2.0  # SageMaker's per-probe limit
PING_INTERVAL_S = 0.05
PORT_RETRIES = 3  # new ports tried when a worker finds its port taken


class Health(str, enum.Enum):
    STARTING = "Starting"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"  # died or failed its ping; being restarted
    DRAINING = "Draining"  # scaled in: finishing what it has, no new requests
    STOPPED = "Stopped"



class Instance:
    def __init__(self, instance_id: str, variant: str, launch: Launch, env: dict[str, str],
                 model_dir: Path, log_path: Path) -> None:
        self.id = instance_id
        self.variant = variant
        self.launch = launch
        self.env = env
        self.model_dir = model_dir
        self.log_path = log_path
        self.process: spawn.Process | None = None
        self.launcher: spawn.Launcher = spawn.Local()  # where and how its process starts, set by the fleet
        self.slot: spawn.Slot | None = None  # an inference-component copy: its host and the room it holds there
        self._health = Health.STARTING
        self._suspect = False
        # Told whenever this instance's routability may change; its fleet bumps its version then.
        self.on_change: Callable[[], None] = lambda: None
        self.restarts = 0
        self.placed_on: str | None = None  # an inference-component copy: the instance it is placed on
        self.instance_type = ""  # its ml.* type (a copy: its host's), set by the fleet
        self.model_name = ""  # the SageMaker model it runs (a pool's override, a copy's specification's)
        self.holds_capacity = False  # it holds one of its type's instances (fleet/instance_capacity.py)
        self.in_pools = False  # its variant has several InstancePools: its metrics name its type too
        self.ping_failures = 0  # health checks failed in a row
        self.in_flight = 0  # kept equal to load.in_flight by the load itself; strategies read it
        self.load = Load(mirror=self)
        self.kv = KvIndex()  # what its prefix cache holds, for KV_AWARE
        self._kv_sync = KvSync(self.kv)
        self.started_at = time.time()
        if launch.url:
            parsed = urlparse(launch.url)
            self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        else:
            self.host, self.port = "127.0.0.1", 0
        self.pool = ConnectionPool(self.host, self.port)  # made anew by each start, with the port it binds
        self._lock = threading.Lock()

    @property
    def health(self) -> Health:
        return self._health

    @health.setter
    def health(self, value: Health) -> None:
        self._health = value
        self.on_change()

    @property
    def suspect(self) -> bool:
        """Set by the runtime when a connection is refused; cleared by the next passing /ping."""
        return self._suspect

    @suspect.setter
    def suspect(self, value: bool) -> None:
        self._suspect = value
        self.on_change()

    @property
    def instance_id(self) -> str:
        return self.id

    @property
    def kv_blocks(self) -> set[str]:
        return self.kv.blocks

    @property
    def kv_block_tokens(self) -> int:
        return self.kv.block_tokens

    def served_prompt(self, prompt_blocks: Sequence[str]) -> None:
        self._kv_sync.served(prompt_blocks, self.host, self.port)

    def refresh_kv(self, max_age_s: float) -> None:
        if self.routable:
            self._kv_sync.refresh(self.host, self.port, max_age_s)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def node(self) -> str | None:
        return self.process.node if self.process else None

    @property
    def routable(self) -> bool:
        return self._health == Health.HEALTHY and not self._suspect

    def start(self) -> None:
        """Start the process (nothing to start for a URL instance)."""
        self._kv_sync.reset()
        if self.launch.url:
            self.pool = ConnectionPool(self.host, self.port)
            return
        if self.process is not None:
            self.process.close()  # the one it replaces (a Ray actor holds it)
        # what this worker is told; the launcher adds the environment of the machine it runs on
        env = {**self.env, **self.launch.env, "SM_MODEL_DIR": str(self.model_dir), "PYTHONUNBUFFERED": "1"}
        if self.launch.command:
            argv = [sys.executable, "-m", "sagemaker_emu.worker.guard", "--", *self.launch.command]
            started = self.launcher.start(argv, env, self.launch.cwd, self.log_path, None, self.instance_type, self.slot)
        else:
            kind = self.launch.builtin or "toolkit"
            argv = [sys.executable, "-m", "sagemaker_emu.worker", kind]
            started = self.launcher.start(argv, env, str(self.model_dir), self.log_path, kind, self.instance_type, self.slot)
        self.process, self.host, self.port = started.process, started.host, started.port
        self.pool = ConnectionPool(self.host, self.port)
        self.started_at = time.time()

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def ping(self) -> bool:
        try:
            return container.request(self.host, self.port, "GET", "/ping", PING_TIMEOUT_S)[0] == 200
        except (OSError, ValueError):  # ValueError: a status line or chunk size that is not a number
            return False

    def wait_healthy(self, deadline: float, cancelled: threading.Event) -> str | None:
        """Poll /ping until it passes; None when healthy, else why not."""
        port_retries = PORT_RETRIES
        while not cancelled.is_set():
            if self.process is not None and self.process.poll() is not None:
                if self.process.returncode == EXIT_PORT_TAKEN and port_retries > 0:
                    port_retries -= 1  # free_port() is only a guess until the worker binds it
                    self.start()
                    continue
                return f"the instance process exited with code {self.process.returncode} during startup"
            if self.ping():
                self.ping_failures = 0
                self.health = Health.HEALTHY
                self.suspect = False
                return None
            if time.time() > deadline:
                return "the instance did not answer GET /ping with 200 before the startup health check timeout"
            time.sleep(PING_INTERVAL_S)
        return "the deployment was cancelled"

    def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; the whole process group."""
        self.health = Health.STOPPED
        self.pool.close()
        proc = self.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.signal_group(signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.signal_group(signal.SIGKILL)
                proc.wait()
        proc.close()

    def log_tail(self, lines: int = 50) -> list[str]:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 64 * 1024))
                data = f.read()
        except OSError:
            return []
        return list(deque(data.decode(errors="replace").splitlines(), maxlen=lines))

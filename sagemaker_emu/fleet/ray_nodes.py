"""Instances on a Ray cluster's nodes (`serve --fleet ray --ray-address ADDRESS`; the `ray`
extra). Everything else about a fleet stays as it is: the fleet supervises and restarts
instances, health-checks them and routes to them over the network; only where a worker
process runs changes.

Each instance's worker is held by a Ray actor (`Holder`), placed by its instance type's
resources (instance_types.json): its vCPUs as CPU, its memory, its GPUs, and Ray's
`accelerator_type:<name>` resource (accelerators.json's `ray` name), which Ray gives every GPU
node, so an ml.g5.xlarge lands on an A10G node. An inference-component endpoint's instance runs no
worker of its own: it is a placement group of one bundle of its type's resources, made with its
first copy and removed with its last, and each copy's actor holds the copy's own room in it
(ComputeResourceRequirements). The actor starts the
worker on its node, bound to the node's address, and the emulator calls it there. An instance
type that no node of the cluster can hold fails the deployment saying so.

The worker dies with its actor (its parent: worker/lifeline.py), the actor with the emulator
(Ray ends a driver's actors when the driver goes), and each stop ends the actor.

What a worker reads (model data, code) must be on its node at the path the emulator prepared:
a shared filesystem, or a built-in image that reads nothing (docs/configuration.md).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from sagemaker_emu.fleet.placement import hardware
from sagemaker_emu.fleet.spawn import Forked, Slot, Started
from sagemaker_emu.fleet.speed import accelerators

log = logging.getLogger("sagemaker_emu.fleet")

START_TIMEOUT_S = 120.0  # an actor no node has room for stays pending: give up then
EXIT_POLL_S = 0.5  # how long the exit watcher waits on Ray before looking for new workers
NAMESPACE = "sagemaker-emu"


class Holder:
    """On a node: the actor that runs one worker process and answers for it."""

    def __init__(self) -> None:
        # Linux's parent-death signal fires when the thread that started the worker exits:
        # one thread that lives as long as the actor starts it (fleet/spawn.py says more).
        self._starter = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self._process: subprocess.Popen | None = None

    def start(self, args: list[str], env: dict[str, str], cwd: str | None, log_path: str) -> tuple[int, str, int, str]:
        """Start the worker (`python <args>` with this node's Python); (pid, host, port, node id)."""
        import ray

        host = ray.util.get_node_ip_address()
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        env = {**os.environ, **env, "SAGEMAKER_BIND_TO_PORT": str(port), "SAGEMAKER_EMU_BIND_HOST": host,
               "SAGEMAKER_EMU_PARENT_PID": str(os.getpid())}
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as out:
            self._process = self._starter.submit(
                subprocess.Popen, [sys.executable, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True).result()
        return self._process.pid, host, port, ray.get_runtime_context().get_node_id()

    def wait(self) -> int:
        """The worker's exit status, once it exits."""
        assert self._process is not None
        return self._process.wait()

    def signal_group(self, signum: int) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signum)
            except ProcessLookupError:
                pass


class RayProcess(Forked):
    """The emulator's handle on a worker an actor holds: its exit comes from the actor's
    `wait` (the launcher's exit watcher), signals go through the actor."""

    def __init__(self, pid: int, actor: Any, node: str, launcher: "RayNodes", slot: Slot | None) -> None:
        super().__init__(pid)
        self.actor, self.node, self.slot, self._launcher = actor, node, slot, launcher
        self._closed = False

    def kill(self) -> None:
        self.signal_group(signal.SIGKILL)

    def signal_group(self, signum: int) -> None:
        if self.returncode is None:
            self.actor.signal_group.remote(signum)

    def close(self) -> None:
        if not self._closed:  # once: a copy's host counts its copies
            self._closed = True
            self._launcher.release(self)


class RayNodes:
    """The launcher (fleet/spawn.py's Launcher) that runs workers as Ray actors."""

    def __init__(self, address: str) -> None:
        import ray  # the CLI said how to install it if it is missing

        self.ray = ray
        try:
            ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING,
                     ignore_reinit_error=True)
        except Exception as exc:  # noqa: BLE001 - whatever Ray raises, the user needs the address and why
            raise SystemExit(f"sagemaker-emu: --fleet ray: cannot reach the Ray cluster at {address}: {exc}") from None
        self.address = address
        self._holder = ray.remote(max_concurrency=4)(Holder)  # wait() blocks one thread; signals use another
        self._lock = threading.Lock()
        self._exits: dict[Any, RayProcess] = {}  # the actor's wait() -> its worker's handle
        self._hosts: dict[str, tuple[Any, int]] = {}  # an inference-component host -> its placement group, copies
        threading.Thread(target=self._watch, daemon=True, name="ray-exits").start()

    # ------------------------------------------------------------ placement

    def requirements(self, instance_type: str) -> dict[str, Any]:
        """The actor options that place an instance of `instance_type`."""
        spec = hardware(instance_type)
        if spec is None:
            return {"num_cpus": 1}
        options: dict[str, Any] = {"num_cpus": spec.vcpus, "memory": spec.memory_mb * 1024 * 1024}
        chip = accelerators().get(spec.accelerator)
        if chip is not None:
            if chip["ray"] != "aws-neuron-core":  # Neuron devices are not GPUs to Ray
                options["num_gpus"] = spec.accelerators
            options["resources"] = {f"accelerator_type:{chip['ray']}": 0.001}  # Ray's convention for a node's GPU type
        return options

    def check(self, instance_type: str) -> str | None:
        need = self.requirements(instance_type)
        wanted = {"CPU": need.get("num_cpus", 0), "GPU": need.get("num_gpus", 0), "memory": need.get("memory", 0),
                  **need.get("resources", {})}
        for node in self.ray.nodes():
            have = node.get("Resources", {})
            if node.get("Alive") and all(have.get(k, 0) >= v for k, v in wanted.items() if v):
                return None
        said = ", ".join(f"{k} {v:g}" for k, v in wanted.items() if v)
        return (f"No node of the Ray cluster at {self.address} can hold an {instance_type} instance ({said}); "
                "add a node with those resources, or choose another instance type.")

    # ------------------------------------------------------------ workers

    def start(self, argv: list[str], env: dict[str, str], cwd: str | None, log_path: Path, kind: str | None,
              instance_type: str, slot: Slot | None = None) -> Started:
        options = self.requirements(instance_type) if slot is None else self._in_host(slot)
        actor = self._holder.options(**options).remote()
        try:
            pid, host, port, node = self.ray.get(actor.start.remote(argv[1:], env, cwd, os.fspath(log_path)),
                                                 timeout=START_TIMEOUT_S)
        except self.ray.exceptions.GetTimeoutError:
            self._drop(actor, slot)
            raise OSError(f"no node of the Ray cluster had room for an {instance_type} instance within "
                          f"{START_TIMEOUT_S:g} s") from None
        except Exception as exc:
            self._drop(actor, slot)
            raise OSError(f"the Ray actor for an {instance_type} instance failed: {exc}") from None
        process = RayProcess(pid, actor, node, self, slot)
        with self._lock:
            self._exits[actor.wait.remote()] = process
        return Started(process, host, port)

    def _in_host(self, slot: Slot) -> dict[str, Any]:
        """A copy's options: inside its host's placement group (one bundle of the host type's
        resources, made with the host's first copy), holding its own room there."""
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        with self._lock:
            group, copies = self._hosts.get(slot.host, (None, 0))
            if group is None:
                need = self.requirements(slot.instance_type)
                bundle = {"CPU": need.get("num_cpus", 0), "GPU": need.get("num_gpus", 0), "memory": need.get("memory", 0),
                          **need.get("resources", {})}
                group = self.ray.util.placement_group([{k: v for k, v in bundle.items() if v}])
            self._hosts[slot.host] = (group, copies + 1)
        options: dict[str, Any] = {"num_cpus": slot.cpus, "scheduling_strategy": PlacementGroupSchedulingStrategy(
            group, placement_group_bundle_index=0)}
        if slot.memory_mb:
            options["memory"] = slot.memory_mb * 1024 * 1024
        spec = hardware(slot.instance_type)
        chip = accelerators().get(spec.accelerator) if spec is not None else None
        if chip is not None and chip["ray"] != "aws-neuron-core" and slot.accelerators:
            options["num_gpus"] = slot.accelerators
        return options

    def release(self, process: RayProcess) -> None:
        """The worker is done with: its actor goes (and the worker with it, if still running)."""
        self._drop(process.actor, process.slot)

    def _drop(self, actor: Any, slot: Slot | None) -> None:
        try:
            self.ray.kill(actor)
        except Exception:  # noqa: BLE001 - already gone
            log.debug("an actor was already gone")
        if slot is None:
            return
        with self._lock:  # the host's last copy: its placement group goes too
            group, copies = self._hosts.pop(slot.host, (None, 0))
            if copies > 1:
                self._hosts[slot.host] = (group, copies - 1)
                return
        if group is not None:
            self.ray.util.remove_placement_group(group)

    def _watch(self) -> None:
        """Tell each handle when its worker exits: the actor's wait() returned (or the actor
        or its node died, which took the worker)."""
        while True:
            with self._lock:
                waiting = list(self._exits)
            if not waiting:
                threading.Event().wait(EXIT_POLL_S)
                continue
            done, _ = self.ray.wait(waiting, num_returns=1, timeout=EXIT_POLL_S)
            for ref in done:
                with self._lock:
                    process = self._exits.pop(ref)
                try:
                    code = self.ray.get(ref)
                except Exception:  # noqa: BLE001 - the actor died: so did its worker
                    code = -signal.SIGKILL
                process.ended(code)

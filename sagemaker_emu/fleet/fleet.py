"""A fleet: every instance of every variant of one deployment of an endpoint.

`ProcessDeployer.start` brings a fleet up (blocking until all instances pass /ping), and
the fleet then keeps it up: a dead instance is marked unhealthy, restarted and put back
when its /ping passes. The control plane sees only what fleet/api.py declares.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from sagemaker_emu.fleet.api import (ComponentPlan, Copies, DeploymentFailed, ObjectStore, PoolPlan, ScaleIn,
                                     ServerlessPlan, VariantPlan, component_key)
from sagemaker_emu.fleet import model_data, spawn, speed
from sagemaker_emu.fleet.instance_capacity import ICE, InstanceCapacity
from sagemaker_emu.fleet.placement import NO_ROOM, Hardware, Host, Need, Placement, hardware
from sagemaker_emu.fleet.host_access import request_environment, within
from sagemaker_emu.fleet.images import ImageError, ImageMap, Launch, resolve
from sagemaker_emu.fleet.instance import Health, Instance
from sagemaker_emu.fleet.multi_model import MultiModels
from sagemaker_emu.worker.pipeline import PIPELINE_SPEC
from sagemaker_emu.worker.toolkit import program_path

log = logging.getLogger("sagemaker_emu.fleet")

DEFAULT_STARTUP_TIMEOUT_S = 240  # SageMaker's documented /ping deadline after start
MONITOR_INTERVAL_S = 0.1
BAKE_CHECK_S = 0.1  # how often a rolling update's halt condition (its alarms) is asked
CONSOLIDATE_CHECK_S = 0.5  # how often variants under CONSOLIDATION are looked at
MAX_RESTART_BACKOFF_S = 30.0
PING_FAILURE = ("The primary container for production variant {variant} did not pass the ping health "
                "check. Please check CloudWatch logs for this endpoint.")


@dataclass(frozen=True)
class HealthChecks:
    """Health checks after startup. SageMaker documents the 2-s answer limit of /ping, not
    the interval; 5 s and 3 failures are ours (docs/decisions.md)."""

    interval: float = 5.0
    failures: int = 3


@dataclass(frozen=True)
class PipelineContainer:
    """One container of a model of several: what it runs and its own Environment and data."""

    hostname: str
    launch: Launch
    env: dict[str, str]
    source: model_data.ModelSource | None


@dataclass(frozen=True)
class Pool:
    """One of a variant's instance pools: its type and priority, and what its instances run
    when its model is not the variant's (ModelNameOverride)."""

    instance_type: str
    priority: int
    runs: "VariantFleet | None" = None


@dataclass
class VariantFleet:
    name: str
    launch: Launch
    env: dict[str, str]
    model_source: model_data.ModelSource | None
    startup_timeout: float
    directory: Path
    instances: list[Instance] = field(default_factory=list)
    routable: tuple[Instance, ...] = ()  # cached: rebuilt when the fleet's routing version moves
    routable_version: int = -1
    router: Any = None  # the routing strategy's state for this variant, made by the router factory
    serverless: ServerlessPlan | None = None
    instance_type: str = ""
    multi_model: MultiModels | None = None  # Mode MultiModel: models are loaded per call
    pipeline: tuple[PipelineContainer, ...] = ()  # a model of several containers, in order
    pipeline_mode: str = "Serial"  # or Direct: a call names one container
    pools: tuple[Pool, ...] = ()  # by priority; none for serverless variants and copies (their host's)
    runs_by_type: dict[str, "VariantFleet"] = field(default_factory=dict)  # copies: a specification per host type
    model_name: str = ""  # the SageMaker model its instances run
    _numbers: Any = field(default_factory=lambda: itertools.count(1))
    _cold: threading.Lock = field(default_factory=threading.Lock)  # one cold start at a time


class ProcessFleet:
    def __init__(self, endpoint: str, deployer: "ProcessDeployer", stopping: threading.Event | None = None) -> None:
        self.endpoint = endpoint
        self.deployer = deployer
        self.variants: dict[str, VariantFleet] = {}  # by variant name, and by component_key for IC copies
        self.placements: dict[str, Placement] = {}  # inference-component variants: their instances
        self.component_variant: dict[str, str] = {}  # component_key -> the variant holding its copies
        # component_key -> what one copy reserves (and, with Specifications, on each instance type)
        self.component_needs: dict[str, tuple[Need, dict[str, Need] | None]] = {}
        self.scale_in: dict[str, ScaleIn] = {}  # inference-component variants under managed scaling
        self.directory = Path()  # where its instances' files go (set by the deployer)
        self._copies_lock = threading.Lock()  # one set_copies or remove_component at a time
        self.stopping = stopping or threading.Event()  # set by stop(), or by whoever started it
        self._lock = threading.Lock()
        # Bumped when any of this fleet's instances may have changed routability, so the cached
        # routable tuples (and PREFIX_AWARE's ring built from them) are rebuilt only then.
        self._routing_version = 0
        self._routing_lock = threading.Lock()
        self._monitor = threading.Thread(target=self._watch, daemon=True, name=f"fleet-{endpoint}")
        self._health = threading.Thread(target=self._check_health, daemon=True, name=f"health-{endpoint}")

    # ------------------------------------------------------------ queries

    def instances(self, variant: str) -> tuple[Instance, ...]:
        """The variant's instances that may take a request now (the same tuple until one's
        health changes, so strategies can cache what they derive from it)."""
        vf = self.variants.get(variant)
        if vf is None:
            return ()
        with self._routing_lock:
            if vf.routable_version != self._routing_version:
                vf.routable = tuple(i for i in vf.instances if i.routable)
                vf.routable_version = self._routing_version
            return vf.routable

    def routing_changed(self) -> None:
        """An instance's health changed, or one joined or left: rebuild the routable views."""
        with self._routing_lock:
            self._routing_version += 1

    def all_instances(self) -> list[Instance]:
        with self._lock:
            return [i for vf in self.variants.values() for i in vf.instances]

    def router(self, variant: str):
        return self.variants[variant].router

    def placement(self, variant: str) -> list[dict]:
        placement = self.placements.get(variant)
        return placement.view() if placement else []

    def instance_type(self, variant: str) -> str:
        vf = self.variants.get(variant)
        return vf.instance_type if vf is not None else ""

    def pool_counts(self, variant: str) -> dict[str, int]:
        placement = self.placements.get(variant)
        if placement is not None:
            return placement.counts()
        vf = self.variants.get(variant)
        if vf is None:
            return {}
        with self._lock:
            running = Counter(i.instance_type for i in vf.instances if i.health != Health.STOPPED)
        return {p.instance_type: running[p.instance_type] for p in vf.pools}

    def serverless(self, variant: str) -> ServerlessPlan | None:
        vf = self.variants.get(variant)
        return vf.serverless if vf is not None else None

    def direct_targets(self, variant: str) -> tuple[str, ...] | None:
        vf = self.variants.get(variant)
        if vf is None or vf.pipeline_mode != "Direct" or not vf.pipeline:
            return None
        return tuple(c.hostname for c in vf.pipeline)

    def multi_model(self, variant: str) -> MultiModels | None:
        vf = self.variants.get(variant)
        return vf.multi_model if vf is not None else None

    # ------------------------------------------------------------ serverless

    def cold_start(self, variant: str) -> float | None:
        vf = self.variants[variant]
        with vf._cold:  # callers arriving together share one start
            if self.instances(variant):
                return None
            started = time.monotonic()
            self.bring_up(vf, 1)
            return time.monotonic() - started

    def set_serverless(self, variant: str, plan: ServerlessPlan) -> None:
        vf = self.variants[variant]
        vf.serverless = plan
        if plan.provisioned:
            self.cold_start(variant)  # provisioned concurrency is kept warm

    def _reap_idle(self) -> None:
        """Serverless variants with nothing provisioned scale to zero after idling."""
        idle_s = self.deployer.serverless_idle_s
        now = time.monotonic()
        for vf in list(self.variants.values()):
            if vf.serverless is None or vf.serverless.provisioned or not vf._cold.acquire(blocking=False):
                continue
            try:
                with self._lock:
                    live = [i for i in vf.instances if i.health != Health.STOPPED]
                if live and all(i.load.in_flight == 0 and now - i.load.last_active >= idle_s for i in live):
                    log.info("serverless variant %s of %s idle for %gs: scaling to zero", vf.name, self.endpoint, idle_s)
                    self._retire(live, vf, None)
            finally:
                vf._cold.release()

    # ------------------------------------------------------------ lifecycle

    def _new_instance(self, vf: VariantFleet, number: int, pool: Pool | None = None, host_type: str = "") -> Instance:
        """Instance `number` of `vf`: from `pool` (a variant's), or a copy on a host of `host_type`."""
        instance_dir = vf.directory / f"instance-{number}"
        model_dir = instance_dir / "model"
        # what it runs: its pool's own model (ModelNameOverride), or a copy's specification for its host's type
        runs = (pool.runs if pool is not None else vf.runs_by_type.get(host_type)) or vf
        # a multi-model container's code (an S3 SAGEMAKER_SUBMIT_DIRECTORY) comes with each model it loads
        self.deployer.prepare(runs.model_source, model_dir, runs.env if runs.multi_model is None else {}, runs.launch)
        env = {**runs.env, "SAGEMAKER_EMU_ENDPOINT": self.endpoint}
        if runs.pipeline:  # each container's data in its own directory; the worker reads the list
            containers = []
            for position, part in enumerate(runs.pipeline, 1):
                part_dir = instance_dir / f"container-{position}"
                self.deployer.prepare(part.source, part_dir, part.env, part.launch)
                launch = part.launch
                containers.append({"hostname": part.hostname, "env": part.env, "model_dir": str(part_dir),
                                   "kind": None if launch.command or launch.url else launch.builtin or "toolkit",
                                   "command": list(launch.command) or None, "cwd": launch.cwd, "url": launch.url})
            spec = instance_dir / "pipeline.json"
            spec.write_text(json.dumps({"mode": runs.pipeline_mode, "containers": containers}))
            env[PIPELINE_SPEC] = str(spec)
        if self.deployer.seed is not None:
            env["SAGEMAKER_EMU_SEED"] = str(self.deployer.seed * 1000 + number)
        instance = Instance(f"{vf.name}-{number}", vf.name, runs.launch, env, model_dir, instance_dir / "instance.log")
        instance.instance_type = pool.instance_type if pool is not None else host_type or vf.instance_type
        instance.model_name = runs.model_name
        instance.launcher = self.deployer.launcher
        instance.holds_capacity = pool is not None
        instance.in_pools = len(vf.pools) > 1
        instance.on_change = self.routing_changed
        return instance

    def _slot(self, key: str, copy_id: str) -> spawn.Slot | None:
        """Where copy `copy_id` of component `key` has room: its host, named uniquely in the
        emulator (a launcher keeps a host's copies together), and the room."""
        placement = self.placements.get(self.component_variant.get(key, ""))
        found = placement.reserved_for(copy_id) if placement is not None else None
        if found is None:
            return None
        host, need = found
        return spawn.Slot(f"{self.directory}/{host.id}", host.instance_type, need.accelerators, need.memory_mb,
                          need.cpus)

    def _provision(self, vf: VariantFleet) -> Pool:
        """The first pool, by priority, that has an instance to give; DeploymentFailed (an
        insufficient capacity error) when none has."""
        unplaceable = []
        for pool in vf.pools:
            why = self.deployer.launcher.check(pool.instance_type)  # a Ray cluster with no node for the type
            if why is not None:
                unplaceable.append(why)
            elif self.deployer.capacity.take(pool.instance_type):
                return pool
        if len(unplaceable) == len(vf.pools):
            raise DeploymentFailed(" ".join(unplaceable)[:1024])
        raise DeploymentFailed(ICE.format(types=", ".join(p.instance_type for p in vf.pools)))

    def bring_up(self, vf: VariantFleet, count: int,
                 reserve: Callable[[str], tuple[str, str] | None] = lambda instance_id: ("", "")) -> int:
        """Start `count` more instances of `vf` (fewer if `reserve` finds no room for one: given
        a copy's id, it answers the host it reserved room on and that host's type); return how
        many once all pass /ping, else raise."""
        fresh: list[Instance] = []
        try:
            for _ in range(count):
                if self.stopping.is_set():
                    raise DeploymentFailed("The deployment was cancelled.")
                number = next(vf._numbers)
                placed = reserve(f"{vf.name}-{number}")
                if placed is None:
                    break
                pool = self._provision(vf) if vf.pools else None
                try:
                    instance = self._new_instance(vf, number, pool, placed[1])
                except BaseException:
                    if pool is not None:
                        self.deployer.capacity.give(pool.instance_type)
                    raise
                instance.placed_on = placed[0] or None
                instance.slot = self._slot(vf.name, instance.id)
                fresh.append(instance)  # from here its capacity goes back with _stop_all
                instance.env.update(speed.worker_env(instance.instance_type))
                instance.start()
        except DeploymentFailed:
            self._stop_all(fresh)
            raise
        except model_data.ModelDataError as exc:  # not a health-check failure: say what it is
            self._stop_all(fresh)
            raise DeploymentFailed(f"Could not prepare the model data of production variant {vf.name}: {exc}"[:1024]) from None
        except OSError as exc:
            self._stop_all(fresh)
            raise DeploymentFailed(f"{PING_FAILURE.format(variant=vf.name)} (sagemaker-emu: {exc})"[:1024]) from None
        with self._lock:
            vf.instances.extend(fresh)  # still Starting: their health change will bump the version
        deadline = time.time() + vf.startup_timeout
        for instance in fresh:
            why = instance.wait_healthy(deadline, self.stopping)
            if why is not None:
                reason = _failure_reason(vf.name, instance, why)
                with self._lock:
                    vf.instances = [i for i in vf.instances if i not in fresh]
                self.routing_changed()
                self._stop_all(fresh)
                raise DeploymentFailed(reason)
        return len(fresh)

    def start_monitor(self) -> None:
        self._monitor.start()
        self._health.start()
        if any(s.strategy == "CONSOLIDATION" for s in self.scale_in.values()):
            threading.Thread(target=self._consolidate, daemon=True, name=f"consolidate-{self.endpoint}").start()

    # ------------------------------------------------------------ consolidation

    def _consolidate(self) -> None:
        """ScaleInPolicy CONSOLIDATION: once a variant's copies have not changed for the
        cooldown, empty up to `step` hosts by moving their copies onto the others (each new copy
        passes /ping before its old one drains and stops), so managed scaling releases them."""
        while not self.stopping.wait(CONSOLIDATE_CHECK_S):
            for variant, policy in self.scale_in.items():
                placement = self.placements[variant]
                quiet = time.monotonic() - placement.changed >= self.deployer.wall(policy.cooldown_s)
                if policy.strategy != "CONSOLIDATION" or not quiet or not self._copies_lock.acquire(blocking=False):
                    continue
                try:
                    for _ in range(policy.step):
                        found = placement.consolidation(self._need_on)
                        if found is None or self.stopping.is_set():
                            break
                        source, moves = found
                        log.info("consolidating %s of %s: moving %d copies off instance %s", variant, self.endpoint,
                                 len(moves), source.id)
                        for copy_id, target in moves.items():
                            self._move_copy(copy_id, target, placement)
                finally:
                    placement.changed = time.monotonic()  # the round is an operation: the cooldown starts again
                    self._copies_lock.release()

    def _need_on(self, copy_id: str, instance_type: str) -> Need | None:
        need, needs = self.component_needs.get(copy_id.rsplit("-", 1)[0], (None, None))
        return needs.get(instance_type) if needs is not None else need

    def _move_copy(self, copy_id: str, target: Host, placement: Placement) -> None:
        """Start the copy anew on the host, then drain and stop the old one; a copy that cannot
        start there stays where it is."""
        key = copy_id.rsplit("-", 1)[0]
        vf = self.variants.get(key)
        with self._lock:
            old = next((i for i in vf.instances if i.id == copy_id and i.health == Health.HEALTHY), None) if vf else None
        if vf is None or old is None:
            return
        reserved: list[str] = []

        def reserve(new_id: str) -> tuple[str, str] | None:
            need = self._need_on(copy_id, target.instance_type)
            host = placement.reserve_on(new_id, need, target.id) if need is not None else None
            if host is None:
                return None
            reserved.append(new_id)
            return host.id, host.instance_type

        try:
            if self.bring_up(vf, 1, reserve) == 1:
                self._retire([old], vf, placement)
                return
        except DeploymentFailed as exc:
            log.warning("consolidation could not start copy %s on %s: %s", copy_id, target.id, exc)
        for new_id in reserved:  # it did not start: give its room back
            placement.release(new_id)

    def scale(self, variant: str, instance_count: int) -> None:
        vf = self.variants[variant]
        with self._lock:
            live = [i for i in vf.instances if i.health != Health.STOPPED]
        if instance_count > len(live):
            self.bring_up(vf, instance_count - len(live))
            return
        # Scale-in takes the lowest-priority pools' instances first, newest first, so the fleet
        # drifts back to the preferred types as they have room again.
        priority = {p.instance_type: p.priority for p in vf.pools}
        live.sort(key=lambda i: priority.get(i.instance_type, 0))
        self._retire(live[instance_count:], vf, None)

    def set_copies(self, plan: ComponentPlan, count: int) -> Copies:
        placement = self.placements.get(plan.variant)
        if placement is None:
            raise DeploymentFailed(f"Production variant {plan.variant} does not host inference components.")
        key = component_key(plan.name)
        with self._copies_lock:
            vf = self.variants.get(key)
            if vf is None:
                vf = self._copies_fleet(plan)
                with self._lock:
                    self.variants[key] = vf
                    self.component_variant[key] = plan.variant
            with self._lock:
                live = [i for i in vf.instances if i.health != Health.STOPPED]
            if count <= len(live):
                live.sort(key=lambda i: placement.priority.get(i.instance_type, 0))  # fallback hosts' copies first
                self._retire(live[count:], vf, placement)
                return Copies(count)
            started = self._start_copies(vf, count - len(live), plan, placement)
            reached = len(live) + started
            return Copies(reached, None if reached == count else NO_ROOM)

    def replace_copies(self, plan: ComponentPlan, count: int, batch: int, wait_s: float,
                       halt: Callable[[], bool] | None = None) -> Copies | None:
        placement = self.placements[plan.variant]
        key = component_key(plan.name)
        with self._copies_lock:
            live = self.variants[key]
            fresh = self._copies_fleet(plan)
            fresh._numbers = live._numbers  # copy ids stay unique across specifications
            with self._lock:
                old = [i for i in live.instances if i.health != Health.STOPPED]
            while old:
                started = self._start_copies(fresh, min(batch, len(old)), plan, placement)
                if started == 0:  # no room beside the old copies for even one new one
                    raise DeploymentFailed(f"{NO_ROOM} The update needs room for a new copy beside the old ones.")
                with self._lock:  # the new copies take calls; the old ones finish theirs
                    moving, fresh.instances = fresh.instances, []
                    live.instances.extend(moving)
                for instance in moving:
                    instance.variant = key
                self.routing_changed()
                leaving, old = old[:started], old[started:]
                self._retire(leaving, live, placement)
                if halt is not None:  # each batch bakes while the caller's alarms are watched
                    if self._bake(wait_s, halt):
                        return None
                elif old and self.stopping.wait(wait_s):
                    break
            live.launch, live.env, live.model_source = fresh.launch, fresh.env, fresh.model_source
            live.runs_by_type = fresh.runs_by_type
            live.startup_timeout = fresh.startup_timeout
        return self.set_copies(plan, count)

    def _bake(self, seconds: float, halt: Callable[[], bool]) -> bool:
        """Wait `seconds`, asking `halt` every BAKE_CHECK_S; True if it said stop (or the fleet is stopping)."""
        deadline = time.monotonic() + seconds
        while not halt():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self.stopping.wait(min(BAKE_CHECK_S, remaining)):
                return True
        return True

    def _copies_fleet(self, plan: ComponentPlan) -> VariantFleet:
        """What a copy of the component runs, as a fleet of its own under its component key
        (with Specifications, what a copy runs on each instance type)."""
        key = component_key(plan.name)

        def runs(p: ComponentPlan, directory: Path) -> VariantFleet:
            return self.deployer.variant_fleet(VariantPlan(
                name=key, model_name=p.model_name, containers=p.containers, instance_count=0,
                routing=plan.routing, startup_timeout=p.startup_timeout), directory)

        vf = runs(plan, self.directory / key)
        vf.runs_by_type = {itype: runs(p, self.directory / key / f"runs-{itype}") for itype, p in plan.per_type.items()}
        return vf

    def _start_copies(self, vf: VariantFleet, count: int, plan: ComponentPlan, placement: Placement) -> int:
        """Start up to `count` copies into `vf`, each where it fits; room reserved for a copy
        that did not start (none found, or it failed) is given back. Returns how many started."""
        needs = {itype: Need(p.accelerators, p.memory_mb, p.cpus) for itype, p in plan.per_type.items()} or None
        need = Need(plan.accelerators, plan.memory_mb, plan.cpus)
        self.component_needs[component_key(plan.name)] = (need, needs)
        reserved: list[str] = []

        def reserve(copy_id: str) -> tuple[str, str] | None:
            host = placement.reserve(copy_id, need, plan.placement, needs)
            if host is None:
                return None
            reserved.append(copy_id)
            return host.id, host.instance_type

        try:
            return self.bring_up(vf, count, reserve)
        finally:
            with self._lock:
                started = {i.id for i in vf.instances}
            for copy_id in reserved:
                if copy_id not in started:
                    placement.release(copy_id)

    def kill(self, instance_id: str) -> bool:
        instance = next((i for i in self.all_instances() if i.id == instance_id), None)
        process = instance.process if instance is not None else None
        if process is None or process.poll() is not None:
            return False
        process.kill()  # the exit watcher restarts it, as after a crash
        return True

    def remove_component(self, name: str) -> None:
        key = component_key(name)
        with self._copies_lock:
            vf = self.variants.get(key)
            if vf is None:
                return
            self._retire(list(vf.instances), vf, self.placements.get(self.component_variant[key]))
            with self._lock:
                del self.variants[key], self.component_variant[key]
            self.routing_changed()

    def _retire(self, leaving: list[Instance], vf: VariantFleet, placement: Placement | None) -> None:
        """Drain and stop instances (scale-in, fewer copies) and give back their room."""
        for instance in leaving:
            instance.health = Health.DRAINING
        self._drain(leaving)
        self._stop_all(leaving)
        with self._lock:
            vf.instances = [i for i in vf.instances if i not in leaving]
        for instance in leaving:
            if placement is not None:
                placement.release(instance.id)
        self.routing_changed()

    def _drain(self, instances: list[Instance]) -> None:
        deadline = time.time() + self.deployer.drain_timeout
        while time.time() < deadline and any(i.load.snapshot().in_flight for i in instances):
            time.sleep(0.02)

    def stop(self, drain: bool = False) -> None:
        """Stop every instance (SIGTERM, then SIGKILL after the grace period)."""
        instances = self.all_instances()
        if drain:
            for instance in instances:
                if instance.health == Health.HEALTHY:
                    instance.health = Health.DRAINING
            self._drain(instances)
        self.stopping.set()
        self._stop_all(instances)
        for placement in self.placements.values():
            placement.drop_all()

    def _stop_all(self, instances: list[Instance]) -> None:
        """Stop them and give back the capacity they held."""
        threads = [threading.Thread(target=i.stop, args=(self.deployer.stop_grace,)) for i in instances]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for instance in instances:
            if instance.holds_capacity:
                instance.holds_capacity = False
                self.deployer.capacity.give(instance.instance_type)

    # ------------------------------------------------------------ restarts

    def _watch(self) -> None:
        while not self.stopping.wait(MONITOR_INTERVAL_S):
            self._reap_idle()
            for instance in self.all_instances():
                if instance.health != Health.HEALTHY:
                    continue
                proc = instance.process
                if proc is not None and proc.poll() is not None:
                    log.warning("instance %s of %s exited with code %s; restarting",
                                instance.id, self.endpoint, proc.returncode)
                    self._replace(instance)
                elif instance.suspect and instance.ping():
                    instance.suspect = False  # refused a connection once, but answers again

    def _check_health(self) -> None:
        """GET /ping every running instance each interval, as SageMaker does. One that fails
        (no 200 within 2 s) that many times in a row leaves routing and is replaced: a hung
        process (SIGSTOP, a deadlock) never exits, so the exit watcher alone would keep it."""
        health = self.deployer.health
        while not self.stopping.wait(health.interval):
            for instance in self.all_instances():
                state = instance.health
                if state not in (Health.HEALTHY, Health.DRAINING) or self.stopping.is_set():
                    continue
                if instance.ping():
                    instance.ping_failures = 0
                    continue
                instance.ping_failures += 1
                if instance.ping_failures < health.failures or instance.health != state:
                    continue
                if state == Health.DRAINING:  # leaving anyway: its calls fail now, not at the model timeout
                    log.warning("draining instance %s of %s failed %d health checks in a row; stopping it",
                                instance.id, self.endpoint, instance.ping_failures)
                    instance.stop(0)
                    continue
                log.warning("instance %s of %s failed %d health checks in a row; replacing it",
                            instance.id, self.endpoint, instance.ping_failures)
                self._replace(instance)

    def _replace(self, instance: Instance) -> None:
        """Take the instance out and start a new process for it in the background."""
        _take_out(instance)
        threading.Thread(target=self._restart, args=(instance,), daemon=True).start()

    def _restart(self, instance: Instance) -> None:
        backoff = 0.5
        vf = self.variants[instance.variant]
        while not self.stopping.is_set() and instance.health == Health.UNHEALTHY:
            instance.restarts += 1
            try:
                instance.start()
            except OSError as exc:
                log.error("could not restart %s: %s", instance.id, exc)
            else:
                why = instance.wait_healthy(time.time() + vf.startup_timeout, self.stopping)
                if why is None:
                    log.info("instance %s of %s is back", instance.id, self.endpoint)
                    if self.stopping.is_set():
                        instance.stop(self.deployer.stop_grace)
                    return
                _take_out(instance)
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, MAX_RESTART_BACKOFF_S)


def _take_out(instance: Instance) -> None:
    """Out of routing first, then its process gone at once (SIGKILL: a stopped process cannot
    take SIGTERM; calls in flight on it fail), left Unhealthy for `_restart` to bring back."""
    instance.health = Health.UNHEALTHY
    instance.stop(0)
    instance.health = Health.UNHEALTHY  # stop() marks it Stopped


def _failure_reason(variant: str, instance: Instance, why: str, limit: int = 1024) -> str:
    head = f"{PING_FAILURE.format(variant=variant)} (sagemaker-emu: instance {instance.id}: {why}."
    tail = " | ".join(instance.log_tail(10))
    if not tail:
        return (head + ")")[:limit]
    room = limit - len(head) - len(" Last log lines: ") - 1
    if len(tail) > room:
        tail = "..." + tail[-(room - 3):]
    return f"{head} Last log lines: {tail})"


def _worker_env(plan: VariantPlan, container: dict) -> dict[str, str]:
    """The container's Environment, less what would change the worker's interpreter or loader."""
    env, dropped = request_environment({str(k): str(v) for k, v in container.get("Environment", {}).items()})
    if dropped:
        log.warning("model %s: Environment %s not passed to its workers: they would change the interpreter "
                    "or the loader (set them in an --image-map entry instead)", plan.model_name, ", ".join(dropped))
    return env


class ProcessDeployer:
    """Brings up fleets of worker processes; implements fleet.api.Deployer."""

    def __init__(self, state_dir: Path, image_map: ImageMap | None = None, seed: int | None = None,
                 stop_grace: float = 5.0, drain_timeout: float = 60.0,
                 router_factory: Callable[[dict, object], Any] = lambda routing_config, seed: None,
                 health: HealthChecks = HealthChecks(), model_roots: Sequence[Path] = (),
                 objects: ObjectStore | None = None, serverless_idle_s: float = 300.0,
                 multi_model_cache: int = 0, capacity: InstanceCapacity | None = None,
                 wall: Callable[[float], float] = lambda seconds: seconds,
                 launcher: spawn.Launcher | None = None) -> None:
        self.state_dir = state_dir
        self.launcher = launcher or spawn.Local()  # where instance processes run (fleet/spawn.py)
        self.capacity = capacity or InstanceCapacity()  # shared by every fleet: the Region's instances
        self.wall = wall  # the emulator's seconds (--clock-speed) as wall seconds: consolidation's cooldown
        self.multi_model_cache = multi_model_cache  # models an instance may hold at once (0: as memory allows)
        self.serverless_idle_s = serverless_idle_s
        self.objects = objects  # s3:// model data
        self.model_roots = tuple(model_roots)
        self.health = health
        self.image_map = image_map or ImageMap()
        self.seed = seed
        self.stop_grace = stop_grace
        self.drain_timeout = drain_timeout
        self.router_factory = router_factory
        self._deployments = itertools.count(1)

    def _router(self, plan: VariantPlan, directory: Path) -> Any:
        """The variant's routing strategy, seeded (with --seed) by where it runs: the same
        endpoint, deployment and variant decide the same way run after run."""
        seed = None if self.seed is None else f"{self.seed}/{directory.relative_to(self.state_dir)}"
        return self.router_factory(plan.routing, seed)

    def start(self, endpoint_name: str, plans: list[VariantPlan],
              cancel: threading.Event | None = None, place: str | None = None) -> ProcessFleet:
        fleet = ProcessFleet(endpoint_name, self, stopping=cancel)
        base = fleet.directory = self.state_dir / (place or endpoint_name) / f"deployment-{next(self._deployments)}"
        try:
            for plan in plans:
                if plan.containers:
                    fleet.variants[plan.name] = self.variant_fleet(plan, base / plan.name)
                else:  # inference components bring the models; the instances only hold them
                    fleet.placements[plan.name] = self._placement(plan)
                    if plan.max_instances is not None:
                        fleet.scale_in[plan.name] = plan.scale_in
            for plan in plans:
                if plan.containers:
                    fleet.bring_up(fleet.variants[plan.name], plan.instance_count)
        except DeploymentFailed:
            fleet.stop()
            raise
        fleet.start_monitor()
        return fleet

    def forget(self, place: str) -> None:
        shutil.rmtree(self.state_dir / place, ignore_errors=True)

    def log_files(self, place: str) -> list[tuple[str, str, int, Path]]:
        found = []
        # <state dir>/<place>/deployment-<N>/<variant or ic:name>/instance-<K>/instance.log
        for path in (self.state_dir / place).glob("deployment-*/*/instance-*/instance.log"):
            instance_dir, variant_dir, deployment_dir = path.parent, path.parent.parent, path.parent.parent.parent
            number = instance_dir.name.removeprefix("instance-")
            deployment = deployment_dir.name.removeprefix("deployment-")
            if number.isdigit() and deployment.isdigit():
                found.append((variant_dir.name, f"{variant_dir.name}-{number}", int(deployment), path))
        return found

    def _placement(self, plan: VariantPlan) -> Placement:
        """An inference-component variant's hosts: each from the first pool with capacity."""
        pools = [(p.instance_type, p.priority) for p in plan.pools] or [(plan.instance_type, 1)]
        specs: dict[str, Hardware] = {}
        for itype, _ in pools:
            spec = hardware(itype)
            if spec is not None:
                specs[itype] = spec
            else:
                raise DeploymentFailed(f"sagemaker-emu has no hardware data for instance type {itype}, "
                                       "which inference components need to place copies (fleet/instance_types.json).")
        numbers = itertools.count(1)

        def new_host(accept: Callable[[Host], bool] = lambda host: True) -> Host | None:
            """A host of the first pool's type that has capacity and that `accept`s."""
            for itype, _ in pools:
                if accept(Host("", itype, specs[itype])) and self.capacity.take(itype):
                    return Host(f"{plan.name}-{next(numbers)}", itype, specs[itype])
            return None

        def drop_host(host: Host) -> None:
            self.capacity.give(host.instance_type)

        hosts: list[Host] = []
        for _ in range(plan.instance_count):
            host = new_host()
            if host is None:
                for made in hosts:
                    drop_host(made)
                raise DeploymentFailed(ICE.format(types=", ".join(itype for itype, _ in pools)))
            hosts.append(host)
        managed = plan.max_instances is not None
        return Placement(hosts, new_host if managed else None, plan.min_instances or 0, plan.max_instances or 0,
                         drop_host, dict(pools))

    def variant_fleet(self, plan: VariantPlan, directory: Path) -> VariantFleet:
        vf = self._runs(plan, directory)
        if plan.serverless is None and (plan.pools or plan.instance_type):
            vf.pools = tuple(self._pool(plan, pool, directory) for pool in plan.pools) or (Pool(plan.instance_type, 1),)
        return vf

    def _pool(self, plan: VariantPlan, pool: PoolPlan, directory: Path) -> Pool:
        if not pool.containers or pool.model_name == plan.model_name:
            return Pool(pool.instance_type, pool.priority)
        runs = self._runs(replace(plan, model_name=pool.model_name, containers=pool.containers, pools=()),
                          directory / f"pool-{pool.priority}")
        if runs.multi_model is not None or plan.containers[0].get("Mode") == "MultiModel":
            raise DeploymentFailed(f"The instance pool of {pool.instance_type} overrides the model of production "
                                   f"variant {plan.name}; sagemaker-emu runs ModelNameOverride with single-model "
                                   "models only.")
        return Pool(pool.instance_type, pool.priority, runs)

    def _runs(self, plan: VariantPlan, directory: Path) -> VariantFleet:
        """What the variant's instances run, as a fleet with no instances yet."""
        container = plan.containers[0]
        if len(plan.containers) > 1:
            vf = self._pipeline_fleet(plan, directory)
        elif container.get("Mode") == "MultiModel":
            vf = self._multi_model_fleet(plan, container, directory)
        else:
            vf = self._single_fleet(plan, container, directory)
        vf.model_name = plan.model_name
        return vf

    def _single_fleet(self, plan: VariantPlan, container: dict, directory: Path) -> VariantFleet:
        launch, env, source = self._resolve_container(plan, container, directory / "resolve")
        return VariantFleet(
            name=plan.name,
            launch=launch,
            env=env,
            model_source=source,
            startup_timeout=plan.startup_timeout if plan.startup_timeout is not None else DEFAULT_STARTUP_TIMEOUT_S,
            directory=directory,
            router=self._router(plan, directory),
            serverless=plan.serverless,
            instance_type=plan.instance_type,
        )

    def _pipeline_fleet(self, plan: VariantPlan, directory: Path) -> VariantFleet:
        """A model of several containers: each instance's worker runs one process per container
        and passes calls between them (worker/pipeline.py)."""
        if plan.serverless is not None or plan.name.startswith(component_key("")):
            where = "Serverless endpoints" if plan.serverless is not None else "Inference components"
            raise DeploymentFailed(f"{where} run single-container models; model {plan.model_name} has "
                                   f"{len(plan.containers)} containers.")
        parts = []
        for number, container in enumerate(plan.containers, 1):
            if container.get("Mode") == "MultiModel":
                raise DeploymentFailed(f"Container {number} of model {plan.model_name} is a multi-model container; "
                                       "a model of several containers runs single-model ones.")
            try:
                launch, env, source = self._resolve_container(plan, container, directory / f"resolve-{number}")
            except DeploymentFailed as exc:
                raise DeploymentFailed(f"Container {number} of model {plan.model_name}: {exc}"[:1024]) from None
            parts.append(PipelineContainer(container.get("ContainerHostname") or f"container-{number}", launch,
                                           {**env, **launch.env}, source))
        return VariantFleet(
            name=plan.name, launch=Launch(builtin="pipeline"), env={}, model_source=None,
            startup_timeout=plan.startup_timeout if plan.startup_timeout is not None else DEFAULT_STARTUP_TIMEOUT_S,
            directory=directory, router=self._router(plan, directory), instance_type=plan.instance_type,
            pipeline=tuple(parts), pipeline_mode=plan.inference_mode)

    def _resolve_container(self, plan: VariantPlan, container: dict,
                           probe_dir: Path) -> tuple[Launch, dict[str, str], model_data.ModelSource | None]:
        """What one container runs, its Environment as its worker gets it, and its model data."""
        source = model_data.ModelSource.of(container)
        env = _worker_env(plan, container)
        try:  # an inference.py may be inside the archive, or in an S3 source directory
            launch = resolve(container, lambda: self.prepare(source, probe_dir, env), self.image_map)
        except (ImageError, model_data.ModelDataError) as exc:
            raise DeploymentFailed(str(exc)[:1024]) from None
        if launch.toolkit:
            self._check_program(probe_dir, env)
        return launch, env, source

    def prepare(self, source: model_data.ModelSource | None, model_dir: Path, env: dict[str, str],
                launch: Launch | None = None) -> Path:
        """Fill `model_dir` with the model data, and its code/ with an S3 SAGEMAKER_SUBMIT_DIRECTORY
        (the SDK v2's sourcedir.tar.gz for SKLearn, XGBoost, ...), where SageMaker's framework
        containers unpack it. With `launch`, a built-in image reads none of the model data, or
        only the files it names; without, everything is unpacked (to find an inference.py)."""
        builtin = launch is not None and launch.builtin is not None
        model_data.prepare(source, model_dir, self.model_roots, self.objects,
                           unpack=not builtin or bool(launch is not None and launch.model_files),
                           only=frozenset(launch.model_files) if launch is not None and launch.model_files else None)
        submit = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "")
        if submit.startswith("s3://") and not builtin:
            model_data.prepare(model_data.ModelSource(submit, compressed=submit.endswith((".tar.gz", ".tgz"))),
                               model_dir / "code", self.model_roots, self.objects)
        return model_dir

    def _check_program(self, model_dir: Path, env: dict[str, str]) -> None:
        """The inference.py a toolkit worker will run must be in the model data or an allowed root."""
        program = program_path(model_dir, env)
        if not within(program, (model_dir, *self.model_roots)):
            raise DeploymentFailed(
                f"sagemaker-emu will not run {program}: SAGEMAKER_SUBMIT_DIRECTORY and SAGEMAKER_PROGRAM "
                "must name code inside the model data or a directory allowed with --model-root."[:1024])

    def _multi_model_fleet(self, plan: VariantPlan, container: dict, directory: Path) -> VariantFleet:
        """A multi-model container starts empty, with SAGEMAKER_MULTI_MODEL=true; each call's
        TargetModel is fetched from under ModelDataUrl and loaded on the instance it reaches."""
        if plan.serverless is not None or plan.name.startswith(component_key("")):
            where = "Serverless endpoints" if plan.serverless is not None else "Inference components"
            raise DeploymentFailed(f"{where} do not support multi-model models (Mode MultiModel); model "
                                   f"{plan.model_name} is one.")
        prefix = container.get("ModelDataUrl") or (container.get("ModelDataSource") or {}).get("S3DataSource", {}).get("S3Uri")
        if not prefix:
            raise DeploymentFailed(f"Model {plan.model_name} is a multi-model model (Mode MultiModel) without a "
                                   "ModelDataUrl: give the S3 prefix its models are under.")
        try:
            launch = resolve(container, lambda: directory, self.image_map, multi_model=True)
        except ImageError as exc:
            raise DeploymentFailed(str(exc)[:1024]) from None
        env = _worker_env(plan, container)
        if launch.toolkit:  # each model's code is in its own data, under the variant's directory
            self._check_program(directory, env)
        spec = hardware(plan.instance_type)
        cache = (container.get("MultiModelConfig") or {}).get("ModelCacheSetting", "Enabled") != "Disabled"
        return VariantFleet(
            name=plan.name, launch=launch, env={**env, "SAGEMAKER_MULTI_MODEL": "true"}, model_source=None,
            startup_timeout=plan.startup_timeout if plan.startup_timeout is not None else DEFAULT_STARTUP_TIMEOUT_S,
            directory=directory, router=self._router(plan, directory), instance_type=plan.instance_type,
            multi_model=MultiModels(prefix, cache, spec.memory_mb * 1024 * 1024 if spec else None,
                                    self.multi_model_cache, lambda source, path: self.prepare(source, path, env, launch)))

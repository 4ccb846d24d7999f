"""Thread-safe registry of control-plane resources, one `Backend` per account and region.

The store is the only code that takes its lock and the only code that sets an endpoint's
status: operations run inside `Backend.run` (the lock held, as moto runs a backend method),
background work (control/lifecycle.py) reports its results through the `deployed`,
`rescaled` and `deleted` methods, and readers outside the control plane get snapshots
(`serving`, `snapshot`, `fleets`), never the records or the lock.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

from sagemaker_emu import arns
from sagemaker_emu.control import endpoint_policies
from sagemaker_emu.control.quotas import Quotas
from sagemaker_emu.control.resources import (
    JOB_ENDED, TRANSITIONAL, AIBenchmarkJob, AIWorkloadConfig, ComponentTarget, DestinationSnapshot, Endpoint, EndpointConfig, EndpointSnapshot, InferenceComponent,
    InferenceRouter, Model, RoutingTargetSnapshot, Status, Variant, VariantWeight,
)
from sagemaker_emu.control.events import ComponentDeleted, EndpointDeleted, StatusChanged
from sagemaker_emu.control.kinds import KINDS
from sagemaker_emu.errors import InvalidInput, NotFound, NotServing
from sagemaker_emu.events import Events
from sagemaker_emu.fleet.api import Copies, Deployer, Fleet

T = TypeVar("T")
SERVING = (Status.IN_SERVICE, Status.UPDATING, Status.ROLLING_BACK)  # an update keeps the old fleet serving


@dataclass(frozen=True)
class Guardrails:
    """What a guarded deployment needs from outside the control plane (app.build gives them):
    an alarm's state (CloudWatch), and how long a bake lasts on the emulator's clock."""

    alarm_state: Callable[[str, str], str | None] = lambda region, name: None
    wall: Callable[[float], float] = lambda seconds: seconds  # service seconds -> wall seconds (--clock-speed)



class Backend:
    """All resources of one account in one region. Names are unique case-insensitively."""

    def __init__(self, region: str, account: str, deployer: Deployer, clock: Callable[[], float] = time.time,
                 quotas: Quotas | None = None, events: Events | None = None, guardrails: Guardrails | None = None,
                 min_transition: float = 0.0, min_deleting: float = 0.0,
                 peer: Callable[[str, str], "Backend | None"] | None = None):
        self.region = region
        # the backend of a Region and account, if it has been used (an inference router's
        # destinations may be anywhere)
        self.peer: Callable[[str, str], Backend | None] = peer or (
            lambda other, account: self if (other, account) == (region, self.account) else None)
        self.account = account
        self.deployer = deployer
        self.quotas = quotas or Quotas()
        self.events = events or Events()  # deletions and status changes (control/events.py)
        self.min_transition = min_transition  # seconds a Creating/Updating/Deleting status lasts at least
        self.min_deleting = min_deleting  # ... and a Deleting one (docs/decisions.md)
        self.clock = clock
        self.guardrails = guardrails or Guardrails()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified on every endpoint status change
        # one table per kind (control/kinds.py), by lower-case name
        self.tables: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        self.models: dict[str, Model] = self.tables["model"]
        self.endpoint_configs: dict[str, EndpointConfig] = self.tables["endpoint-config"]
        self.endpoints: dict[str, Endpoint] = self.tables["endpoint"]
        self.inference_components: dict[str, InferenceComponent] = self.tables["inference-component"]
        self.inference_routers: dict[str, InferenceRouter] = self.tables["inference-router"]
        self.workload_configs: dict[str, AIWorkloadConfig] = self.tables["ai-workload-config"]
        self.benchmark_jobs: dict[str, AIBenchmarkJob] = self.tables["ai-benchmark-job"]
        self.tags: dict[str, list[dict[str, str]]] = {}  # ARN (lower-case) -> tags in order added

    def now(self) -> float:
        return round(self.clock(), 3)

    def fleet_key(self, endpoint_name: str) -> str:
        """Where the deployer keeps the endpoint's files: apart from every other account's and
        Region's endpoint of that name (names have no dots)."""
        return f"{endpoint_name}.{self.region}.{self.account}"

    def arn(self, resource_type: str, name: str) -> str:
        return arns.arn("sagemaker", self.region, self.account, f"{resource_type}/{name}")

    def get(self, resource_type: str, name: str):
        """The resource, or NotFound in SageMaker's words."""
        found = self.tables[resource_type].get(name.lower())
        if found is None:
            raise NotFound(KINDS[resource_type].noun, self.arn(resource_type, name))
        return found

    def model(self, name: str) -> Model:
        return self.get("model", name)

    def endpoint_config(self, name: str) -> EndpointConfig:
        return self.get("endpoint-config", name)

    def endpoint(self, name: str) -> Endpoint:
        return self.get("endpoint", name)

    def inference_component(self, name: str) -> InferenceComponent:
        return self.get("inference-component", name)

    def inference_router(self, name: str) -> InferenceRouter:
        return self.get("inference-router", name)

    def components_of(self, endpoint_name: str) -> list[InferenceComponent]:
        return [ic for ic in self.inference_components.values() if ic.endpoint_name.lower() == endpoint_name.lower()]

    def resource_by_arn(self, arn: str):
        """The model, endpoint config or endpoint an ARN names, or None."""
        found = arns.parse(arn)
        if found is None or found[:4] != (arns.partition(self.region), "sagemaker", self.region, self.account):
            return None
        resource_type, _, name = found.resource.partition("/")
        if resource_type not in KINDS:
            return None
        return self.tables[resource_type].get(name.lower())

    def check_quota(self, adding: Iterable[tuple[Variant, int]]) -> None:
        """ResourceLimitExceeded unless `count` more instances of each variant's type fit
        beside every instance the region's endpoints run or are bringing up."""
        in_use: Counter = Counter()
        for ep in self.endpoints.values():
            deployed = ep.variants + (ep.pending.variants if ep.pending else [])
            for v in deployed:
                if not v.serverless:
                    in_use[v.spec.get("InstanceType", "")] += v.reserved_instances
        delta: Counter = Counter()
        for v, count in adding:
            if not v.serverless:
                delta[v.spec.get("InstanceType", "")] += count
        self.quotas.check(in_use, delta)

    def read(self, reader: Callable[["Backend"], T]) -> T:
        """`reader`'s answer about the resources, with the lock held (a consistent view)."""
        with self._lock:
            return reader(self)

    def run(self, operation: Callable, params: dict, call) -> dict:
        """Run one control-plane operation with the lock held: operations are the backend's
        methods, and the only other code that changes resources is below."""
        with self._lock:
            return operation(self, params, call)

    # ------------------------------------------------------------ status transitions

    def transition(self, resource: Endpoint | InferenceComponent | InferenceRouter | AIBenchmarkJob,
                   status: Status) -> None:
        """Move an endpoint or inference component to `status` (a move its row of
        control/kinds.py allows), wake waiters, and publish StatusChanged (its handlers run
        with the store's lock held: they must not call the store)."""
        with self._lock:
            kind = resource.arn.rsplit(":", 1)[1].split("/", 1)[0]  # the ARN's resource type: its kind
            moves = KINDS[kind].moves or {}
            if status not in moves.get(resource.status, frozenset()):
                raise RuntimeError(f"{resource.name}: no move from {resource.status.value} to {status.value}")
            resource.status = status
            resource.modified = self.now()
            self._changed.notify_all()
        self.events.publish(StatusChanged(self.region, kind, resource.name, status.value))

    def copies_set(self, ic: InferenceComponent, copies: Copies | None, failure: str | None,
                   rolled_to: InferenceComponent | None = None) -> None:
        """Publish what the fleet reached for a component's copy count (None: it could not
        start them, for `failure`); `rolled_to` carries the specification an update rolled to."""
        with self._lock:
            if self.inference_components.get(ic.name.lower()) is not ic:
                return
            if copies is None:
                ic.failure_reason = failure
                self.transition(ic, Status.FAILED if ic.status == Status.CREATING else Status.IN_SERVICE)
                return
            if rolled_to is not None:
                ic.spec, ic.model = rolled_to.spec, rolled_to.model
                ic.specifications, ic.type_models = rolled_to.specifications, rolled_to.type_models
            ic.current_copies = copies.current
            ic.failure_reason = failure or copies.failure  # a rollback's reason, or copies that did not fit
            self.transition(ic, Status.IN_SERVICE)

    def router_settled(self, router: InferenceRouter, check: Callable[["Backend"], str | None]) -> None:
        """A router's creation or update is done: InService, or (Creating) Failed for what
        `check` says, asked with the lock held."""
        with self._lock:
            if self.inference_routers.get(router.name.lower()) is not router:
                return  # deleted by a reset meanwhile
            router.status_reason = check(self) if router.status == Status.CREATING else None
            self.transition(router, Status.FAILED if router.status_reason else Status.IN_SERVICE)

    def routing_target(self, router: str, target: str) -> RoutingTargetSnapshot:
        """A router's routing target for an invocation, each destination resolved to the endpoint
        that serves it (other Regions are read without their lock, as Describe reads them)."""
        with self._lock:
            found = self.inference_routers.get(router.lower())
            if found is None or found.name != router or found.status not in (Status.IN_SERVICE, Status.UPDATING):
                raise InvalidInput(f"Inference router {router} of account {self.account} not found or not in service.")
            spec = next((t for t in found.targets if t["Name"] == target), None)
            if spec is None:
                raise InvalidInput(f"Routing target {target} is not a routing target of inference router {router}.")
            destinations = []
            for d in spec["Destinations"]:
                parsed = arns.parse(d["ResourceArn"])
                assert parsed is not None, "checked when the router was created"
                kind, _, name = parsed.resource.partition("/")
                owner = self.peer(parsed.region, parsed.account)
                endpoint: str | None = name if kind == "endpoint" and owner is not None else None
                component = name if kind == "inference-component" else None
                if component is not None and owner is not None:
                    ic = owner.inference_components.get(name.lower())
                    endpoint = ic.endpoint_name if ic is not None else None
                allowed = parsed.account == self.account
                if not allowed and owner is not None and endpoint is not None:  # its owner's policy decides
                    ep = owner.endpoints.get(endpoint.lower())
                    allowed = ep is not None and endpoint_policies.allows(
                        ep.policy, self.account, endpoint_policies.INVOKE, d["ResourceArn"], found.arn)
                destinations.append(DestinationSnapshot(d["ResourceArn"], parsed.region, endpoint, component,
                                                        parsed.account, allowed))
            return RoutingTargetSnapshot(found.arn, target, tuple(destinations), spec.get("AsyncInferenceConfig"),
                                         spec.get("RoutingPreference", "LocalRegionFirst"))

    def benchmark_ended(self, name: str, failure: str | None = None, stopped: bool = False) -> None:
        """A benchmark job's runner is done: Completed, Failed with `failure`, or (stopped, or
        Stopping when it ended) Stopped. A job deleted or reset meanwhile is left alone."""
        with self._lock:
            job = self.benchmark_jobs.get(name.lower())
            if job is None or job.status in JOB_ENDED:
                return
            if failure is not None:
                job.failure_reason = failure[:1024]
                self.transition(job, Status.FAILED)
            elif stopped or job.status == Status.STOPPING:
                if job.status == Status.IN_PROGRESS:  # stopped without StopAIBenchmarkJob: through Stopping
                    self.transition(job, Status.STOPPING)
                self.transition(job, Status.STOPPED)
            else:
                self.transition(job, Status.COMPLETED)
            job.ended = job.modified

    def router_deleted(self, router: InferenceRouter) -> None:
        with self._lock:
            if self.inference_routers.get(router.name.lower()) is router:
                del self.inference_routers[router.name.lower()]
                self.tags.pop(router.arn.lower(), None)

    def component_deleted(self, ic: InferenceComponent) -> None:
        with self._lock:
            if self.inference_components.get(ic.name.lower()) is ic:
                del self.inference_components[ic.name.lower()]
                self.tags.pop(ic.arn.lower(), None)
                self.events.publish(ComponentDeleted(ic.endpoint_name, ic.name))
            self._changed.notify_all()

    def _current(self, endpoint: Endpoint) -> bool:
        return self.endpoints.get(endpoint.name.lower()) is endpoint

    def deployed(self, endpoint: Endpoint, fleet: Fleet | None, failure: str | None) -> Fleet | None:
        """Publish the end of a Creating or Updating deployment: `fleet` is up, or it failed
        for `failure`. Returns the fleet the caller must now stop: the one replaced, or the
        new one if a reset removed the endpoint meanwhile."""
        with self._lock:
            if not self._current(endpoint):
                return fleet
            pending, endpoint.pending = endpoint.pending, None
            assert pending is not None, "a deployment was under way"
            retired = None
            if fleet is None and endpoint.status == Status.CREATING:
                endpoint.failure_reason = failure
                self.transition(endpoint, Status.FAILED)
                return None
            if fleet is None:  # a failed or rolled-back update: the old configuration keeps serving
                endpoint.failure_reason = failure
            else:
                retired, endpoint.fleet = endpoint.fleet, fleet
                endpoint.variants = pending.variants
                if endpoint.status == Status.UPDATING:
                    endpoint.config_name = pending.config.name
                    endpoint.spec = endpoint_extras(pending.config.spec)
                    endpoint.failure_reason = None
            self.transition(endpoint, Status.IN_SERVICE)
            return retired

    def shifted(self, endpoint: Endpoint, fleet: Fleet, share: float, phase: str) -> bool:
        """A guarded update's new fleet takes `share` of the traffic, in `phase`. False if the
        endpoint is gone or reset meanwhile (the caller stops `fleet`)."""
        with self._lock:
            pending = endpoint.pending
            if not self._current(endpoint) or pending is None:
                return False
            pending.fleet, pending.share, pending.phase, pending.phase_started = fleet, share, phase, self.now()
            return True

    def rolling_back(self, endpoint: Endpoint, reason: str, share: float = 0.0) -> None:
        """A guarded update is rolled back (an alarm tripped, or it ran out of time): the new
        fleet keeps `share` of the traffic, on its way to none."""
        with self._lock:
            if self._current(endpoint) and endpoint.pending is not None:
                endpoint.pending.share = share
                endpoint.failure_reason = reason
                if endpoint.status != Status.ROLLING_BACK:
                    self.transition(endpoint, Status.ROLLING_BACK)

    def rescaled(self, endpoint: Endpoint, changes: dict[str, dict], scaled: dict[str, int],
                 failure: str | None) -> None:
        """Publish UpdateEndpointWeightsAndCapacities: the weights asked for, the capacities
        reached (`scaled`), and why one was not."""
        with self._lock:
            for name, change in changes.items():
                variant = endpoint.variant(name)
                if variant is None:
                    continue
                if "DesiredWeight" in change:
                    variant.weight = float(change["DesiredWeight"])
                if name in scaled:
                    variant.instance_count = scaled[name]
                if "ServerlessUpdateConfig" in change and failure is None:
                    variant.spec["ServerlessConfig"] = {**variant.spec["ServerlessConfig"],
                                                        **change["ServerlessUpdateConfig"]}
            endpoint.failure_reason = failure
            endpoint.updating_variants.clear()
            if self._current(endpoint):
                self.transition(endpoint, Status.IN_SERVICE)

    def deleted(self, endpoint: Endpoint) -> None:
        """Its fleet is stopped: remove the endpoint and everything kept for it."""
        with self._lock:
            if self._current(endpoint):
                del self.endpoints[endpoint.name.lower()]
                self.tags.pop(endpoint.arn.lower(), None)
                self.deployer.forget(self.fleet_key(endpoint.name))
                self.events.publish(EndpointDeleted(self._snapshot(endpoint)))
            self._changed.notify_all()

    def wait_settled(self, name: str, timeout: float) -> None:
        """Wait (at most `timeout` s) until endpoint `name` is gone or in a steady status."""

        self.wait_until(lambda: self.endpoints.get(name.lower()), timeout)

    def wait_until(self, find: Callable[[], Endpoint | InferenceComponent | None], timeout: float) -> None:
        """Wait (at most `timeout` s) until what `find` returns is gone or in a steady status."""

        def settled() -> bool:
            found = find()
            return found is None or found.status not in TRANSITIONAL

        with self._changed:
            self._changed.wait_for(settled, timeout=timeout)

    # ------------------------------------------------------------ readers outside the control plane

    def snapshot(self, name: str) -> EndpointSnapshot | None:
        """Endpoint `name` (any case) as it is now, or None."""
        with self._lock:
            ep = self.endpoints.get(name.lower())
            return self._snapshot(ep) if ep is not None else None

    def _snapshot(self, ep: Endpoint) -> EndpointSnapshot:
        hosts_components = any(v.hosts_components for v in ep.variants)
        pending = ep.pending
        green = None
        if pending is not None and pending.fleet is not None and pending.share > 0:
            green = (pending.share, EndpointSnapshot(
                name=ep.name, arn=ep.arn, created=ep.created, region=self.region, account=self.account,
                status=ep.status.value, failure_reason=None, fleet=pending.fleet, variants=_weights(pending.variants),
                deploying_config=pending.config.name))
        return EndpointSnapshot(
            name=ep.name, arn=ep.arn, created=ep.created, region=self.region, account=self.account,
            status=ep.status.value, failure_reason=ep.failure_reason, fleet=ep.fleet,
            variants=_weights(ep.variants), green=green,
            deploying_config=ep.config_name if pending is not None else None,
            hosts_components=hosts_components,
            components=self._component_targets(ep.name) if hosts_components else {},
            # shared, not copied (this runs on every invocation): an endpoint's spec is replaced
            # by UpdateEndpoint, never changed in place
            async_config=ep.spec.get("AsyncInferenceConfig"),
            data_capture=_capture(ep.spec), cross_region=ep.spec.get("CrossRegionTrafficConfig"))

    def _component_targets(self, endpoint_name: str) -> dict[str, ComponentTarget]:
        components = {ic.name: ic for ic in self.components_of(endpoint_name)}
        targets = {}
        for ic in components.values():
            serving = components.get(ic.base, ic) if ic.base else ic
            targets[ic.name] = ComponentTarget(ic.name, ic.variant_name, serving.current_copies, serving.name,
                                               ic.status.value)
        return targets

    def serving(self, name: str) -> EndpointSnapshot:
        """The endpoint an invocation of `name` reaches, or SageMaker's error for why none."""
        with self._lock:
            ep = self.endpoints.get(name.lower())
            if ep is None or ep.name != name:  # invoke matches the name's case exactly
                raise InvalidInput(f"Endpoint {name} of account {self.account} not found.")
            if ep.status not in SERVING or ep.fleet is None:
                raise NotServing(f"Endpoint {ep.name} of account {self.account} is not in service "
                                 f"(status: {ep.status.value}).")
            return self._snapshot(ep)

    def fleets(self) -> list[tuple[str, Fleet]]:
        """(endpoint name, fleet) of every endpoint that has one."""
        with self._lock:
            return [(ep.name, ep.fleet) for ep in self.endpoints.values() if ep.fleet is not None]

    def names(self) -> list[tuple[str, float, list[str]]]:
        """(endpoint name, creation time, its inference components) of every endpoint."""
        with self._lock:
            return [(ep.name, ep.created, [ic.name for ic in self.components_of(ep.name)])
                    for ep in self.endpoints.values()]

    def stop_all(self) -> None:
        """Stop every fleet and forget every resource (used by reset and shutdown)."""
        with self._lock:
            fleets = [ep.fleet for ep in self.endpoints.values() if ep.fleet is not None]
            for ep in self.endpoints.values():
                if ep.pending is not None:
                    ep.pending.cancel.set()  # a fleet still starting stops starting
            names = [ep.name for ep in self.endpoints.values()]
            for table in self.tables.values():
                table.clear()
            self.tags.clear()
            self._changed.notify_all()
        for fleet in fleets:
            fleet.stop()
        for name in names:
            self.deployer.forget(self.fleet_key(name))


# Endpoint-config members that DescribeEndpoint repeats.
_EXTRAS = ("DataCaptureConfig", "AsyncInferenceConfig", "ExplainerConfig", "MetricsConfig", "CrossRegionTrafficConfig")


def _weights(variants) -> tuple[VariantWeight, ...]:
    return tuple(VariantWeight(v.name, v.weight, (v.spec.get("RoutingConfig") or {}).get("RoutingStrategy", "RANDOM"))
                 for v in variants)


def _capture(spec: dict) -> dict | None:
    config = spec.get("DataCaptureConfig")
    return config if config and config.get("EnableCapture", True) else None


def endpoint_extras(config_spec: dict) -> dict:
    return {k: config_spec[k] for k in _EXTRAS if k in config_spec}


class Backends:
    """Lazily created backends, keyed by account and region; `account` is the default one."""

    def __init__(self, account: str, deployer: Deployer, quotas: Quotas | None = None, events: Events | None = None,
                 guardrails: Guardrails | None = None, min_transition: float = 0.0, min_deleting: float = 0.0) -> None:
        self.account = account
        self.min_transition = min_transition
        self.min_deleting = min_deleting
        self.deployer = deployer
        self.quotas = quotas or Quotas()
        self.events = events or Events()
        self.guardrails = guardrails or Guardrails()
        self._lock = threading.Lock()
        self._by_place: dict[tuple[str, str], Backend] = {}

    def __call__(self, region: str, account: str | None = None) -> Backend:
        place = (account or self.account, region)
        backend = self._by_place.get(place)  # no lock on the hot path: a dictionary read
        if backend is not None:
            return backend
        with self._lock:
            backend = self._by_place.get(place)
            if backend is None:
                backend = self._by_place[place] = Backend(
                    region, place[0], self.deployer, quotas=self.quotas, events=self.events,
                    guardrails=self.guardrails, min_transition=self.min_transition, min_deleting=self.min_deleting,
                    peer=self.existing)
            return backend

    def existing(self, region: str, account: str) -> Backend | None:
        """The backend of `region` and `account` if anything has used it, without creating one."""
        return self._by_place.get((account, region))

    def all(self) -> list[Backend]:
        with self._lock:
            return list(self._by_place.values())

    def serving(self, region: str, endpoint_name: str, account: str | None = None) -> EndpointSnapshot:
        """runtime.api.Directory: what an invocation in `region` reaches."""
        return self(region, account).serving(endpoint_name)

    def routing_target(self, region: str, router: str, target: str, account: str | None = None) -> RoutingTargetSnapshot:
        """runtime.api.Routers: a router's routing target, each destination resolved."""
        return self(region, account).routing_target(router, target)

    def benchmark_ended(self, region: str, account: str, name: str, failure: str | None = None,
                        stopped: bool = False) -> None:
        """benchmarks' Jobs: a runner reports a job's end (Backend.benchmark_ended)."""
        backend = self.existing(region, account)
        if backend is not None:
            backend.benchmark_ended(name, failure, stopped)

    def find(self, endpoint_name: str) -> EndpointSnapshot | None:
        """Endpoint `endpoint_name` in whichever region has it (for /_emu)."""
        return next((s for s in (b.snapshot(endpoint_name) for b in self.all()) if s is not None), None)

    def fleets(self) -> list[tuple[str, Fleet]]:
        return [pair for backend in self.all() for pair in backend.fleets()]

    def reset(self) -> None:
        for backend in self.all():
            backend.stop_all()

"""The control plane's resources, as plain data."""

from __future__ import annotations

import dataclasses
import enum
import threading
from dataclasses import dataclass, field
from typing import Any

from sagemaker_emu.fleet.api import ComponentPlan, PoolPlan, ScaleIn, ServerlessPlan, VariantPlan


class Status(str, enum.Enum):
    CREATING = "Creating"
    UPDATING = "Updating"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"
    ROLLING_BACK = "RollingBack"
    # a job's (AI benchmark jobs)
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"


TRANSITIONAL = {Status.CREATING, Status.UPDATING, Status.DELETING, Status.ROLLING_BACK}

# The status moves an endpoint may make (control/store.py refuses any other). A failed
# update returns to InService: the old configuration keeps serving.
MOVES: dict[Status, frozenset[Status]] = {
    Status.CREATING: frozenset({Status.IN_SERVICE, Status.FAILED}),
    Status.UPDATING: frozenset({Status.IN_SERVICE, Status.ROLLING_BACK}),
    Status.ROLLING_BACK: frozenset({Status.IN_SERVICE}),  # an auto-rollback: the old fleet serves again
    Status.IN_SERVICE: frozenset({Status.UPDATING, Status.DELETING}),
    Status.FAILED: frozenset({Status.DELETING}),
    Status.DELETING: frozenset(),
}


# An inference router's status moves: it is checked while Creating (Failed when a destination is
# of the wrong kind), and an update applies in full or not at all.
ROUTER_MOVES: dict[Status, frozenset[Status]] = {
    Status.CREATING: frozenset({Status.IN_SERVICE, Status.FAILED}),
    Status.UPDATING: frozenset({Status.IN_SERVICE}),
    Status.IN_SERVICE: frozenset({Status.UPDATING, Status.DELETING}),
    Status.FAILED: frozenset({Status.UPDATING, Status.DELETING}),
    Status.DELETING: frozenset(),
}


# An AI benchmark job's status moves: it runs until it completes or fails, or is stopped.
JOB_MOVES: dict[Status, frozenset[Status]] = {
    Status.IN_PROGRESS: frozenset({Status.COMPLETED, Status.FAILED, Status.STOPPING}),
    Status.STOPPING: frozenset({Status.STOPPED, Status.FAILED}),
    Status.COMPLETED: frozenset(),
    Status.FAILED: frozenset(),
    Status.STOPPED: frozenset(),
}
JOB_ENDED = (Status.COMPLETED, Status.FAILED, Status.STOPPED)


def containers(model_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """A model's container definitions: PrimaryContainer, or the Containers list."""
    if "PrimaryContainer" in model_spec:
        return [model_spec["PrimaryContainer"]]
    return list(model_spec.get("Containers", []))


@dataclass
class Model:
    name: str
    arn: str
    created: float
    spec: dict[str, Any]  # the CreateModel input, less ModelName and Tags


@dataclass
class EndpointConfig:
    name: str
    arn: str
    created: float
    spec: dict[str, Any]  # the CreateEndpointConfig input, less the name and Tags

    @property
    def variants(self) -> list[dict[str, Any]]:
        return self.spec["ProductionVariants"]


@dataclass
class Variant:
    """One production variant as deployed: what it runs and its live weight and size."""

    spec: dict[str, Any]  # the ProductionVariant from the endpoint config
    models: list[Model]  # the variant's model, as it was when deployed
    weight: float
    instance_count: int  # 0 for serverless variants
    deployed_at: float
    overrides: dict[str, Model] = field(default_factory=dict)  # InstancePools' ModelNameOverride models, by name

    @property
    def name(self) -> str:
        return self.spec["VariantName"]

    @property
    def serverless(self) -> bool:
        return "ServerlessConfig" in self.spec

    @property
    def pools(self) -> list[dict[str, Any]]:
        """InstancePools by priority, 1 first ([] for a variant of one InstanceType)."""
        return sorted(self.spec.get("InstancePools", []), key=lambda p: p["Priority"])

    @property
    def instance_type(self) -> str:
        """InstanceType, or the first pool's."""
        pools = self.pools
        return self.spec.get("InstanceType") or (pools[0]["InstanceType"] if pools else "")

    @property
    def hosts_components(self) -> bool:
        """No ModelName: inference components bring the models."""
        return "ModelName" not in self.spec

    @property
    def reserved_instances(self) -> int:
        """Instances counted against the quotas: an inference-component variant with managed
        scaling may grow to its MaxInstanceCount without another call, so it counts that."""
        scaling = self.spec.get("ManagedInstanceScaling") or {}
        if self.hosts_components and scaling.get("Status") == "ENABLED":
            return max(scaling.get("MaxInstanceCount", 0), self.instance_count, 1)
        return max(self.instance_count, 1)

    def plan(self) -> VariantPlan:
        """What the fleet needs to run this variant, as plain data."""
        timeout = self.spec.get("ContainerStartupHealthCheckTimeoutInSeconds")
        model = self.models[0] if self.models else None
        scaling = self.spec.get("ManagedInstanceScaling") or {}
        managed = scaling.get("Status") == "ENABLED" and self.hosts_components
        serverless = None
        if self.serverless:
            config = self.spec["ServerlessConfig"]
            serverless = ServerlessPlan(config["MaxConcurrency"], config.get("ProvisionedConcurrency", 0))
        count = self.instance_count if self.hosts_components else max(self.instance_count, 1)
        if serverless is not None:  # cold until called, unless concurrency is provisioned
            count = 1 if serverless.provisioned else 0
        return VariantPlan(name=self.name, model_name=model.name if model else "",
                           containers=containers(model.spec) if model else [],
                           inference_mode=(model.spec.get("InferenceExecutionConfig") or {}).get("Mode", "Serial")
                           if model else "Serial",
                           instance_count=count, serverless=serverless,
                           routing=self.spec.get("RoutingConfig") or {},
                           startup_timeout=float(timeout) if timeout is not None else None,
                           instance_type=self.instance_type,
                           pools=tuple(self._pool_plan(p) for p in self.pools),
                           scale_in=_scale_in(scaling.get("ScaleInPolicy")),
                           min_instances=scaling.get("MinInstanceCount", 0) if managed else None,
                           max_instances=scaling.get("MaxInstanceCount", self.instance_count) if managed else None)


    def _pool_plan(self, pool: dict[str, Any]) -> PoolPlan:
        override = self.overrides.get(pool.get("ModelNameOverride", ""))
        return PoolPlan(pool["InstanceType"], pool["Priority"], override.name if override else "",
                        containers(override.spec) if override else [])


def _scale_in(policy: dict[str, Any] | None) -> ScaleIn:
    """ScaleInPolicy with the model's defaults: IDLE_RELEASE when none is given."""
    if not policy:
        return ScaleIn()
    return ScaleIn(policy["Strategy"], policy.get("MaximumStepSize", 1), 60.0 * policy.get("CooldownInMinutes", 20))


@dataclass
class Deployment:
    """A fleet on its way up: CreateEndpoint's first one, or UpdateEndpoint's replacement."""

    config: EndpointConfig
    variants: list[Variant]
    started: float
    cancel: threading.Event = field(default_factory=threading.Event)  # set: stop starting it
    # A guarded update (DeploymentConfig): the new fleet once up, the share of traffic it
    # takes, and the phase its variants show (Creating, ActivatingTraffic, Baking)
    fleet: Any = None
    share: float = 0.0
    phase: str = "Creating"
    phase_started: float = 0.0


@dataclass
class Endpoint:
    name: str
    arn: str
    config_name: str
    created: float
    modified: float
    status: Status
    variants: list[Variant] = field(default_factory=list)  # serving now
    pending: Deployment | None = None
    # Variants being rescaled/reweighted -> their DesiredWeightsAndCapacities entry
    updating_variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    failure_reason: str | None = None
    fleet: Any = None  # the fleet.api.Fleet serving `variants`
    spec: dict[str, Any] = field(default_factory=dict)  # extra config members shown by Describe
    deployment_config: dict[str, Any] | None = None  # CreateEndpoint's, or the last UpdateEndpoint's
    policy: str | None = None  # PutEndpointPolicy's document; it goes with the endpoint

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass
class InferenceComponent:
    name: str
    arn: str
    endpoint_name: str
    endpoint_arn: str
    variant_name: str
    created: float
    modified: float
    status: Status
    spec: dict[str, Any]  # Specification, as given
    model: Model | None  # the model it runs, as it was at creation
    desired_copies: int
    current_copies: int = 0
    failure_reason: str | None = None
    last_deployment: dict[str, Any] | None = None  # the DeploymentConfig of the last update
    base: str | None = None  # an adapter: the inference component whose copies serve it
    # Specifications, as given (`spec` and `model` are then its first entry's), and the model
    # each entry that names an InstanceType runs
    specifications: list[dict[str, Any]] | None = None
    type_models: dict[str, Model | None] = field(default_factory=dict)

    def plan(self, routing: dict[str, Any]) -> ComponentPlan:
        """What the fleet needs to run copies of it; `routing` is its variant's RoutingConfig."""
        per_type = {s["InstanceType"]: self._plan(s, self.type_models.get(s["InstanceType"]), routing)
                    for s in self.specifications or [] if "InstanceType" in s}
        return dataclasses.replace(self._plan(self.spec, self.model, routing), per_type=per_type)

    def _plan(self, spec: dict[str, Any], model: Model | None, routing: dict[str, Any]) -> ComponentPlan:
        needs = spec.get("ComputeResourceRequirements", {})
        if model is not None:
            runs = containers(model.spec)
        else:  # Specification.Container: an image (and artifacts) without a model
            c = spec.get("Container", {})
            runs = [{"Image": c.get("Image", ""), "Environment": c.get("Environment", {}),
                     **({"ModelDataUrl": c["ArtifactUrl"]} if "ArtifactUrl" in c else {})}]
        timeout = spec.get("StartupParameters", {}).get("ContainerStartupHealthCheckTimeoutInSeconds")
        return ComponentPlan(
            name=self.name, variant=self.variant_name, model_name=model.name if model else self.name,
            containers=runs, accelerators=float(needs.get("NumberOfAcceleratorDevicesRequired", 0)),
            memory_mb=int(needs.get("MinMemoryRequiredInMb", 0)), cpus=float(needs.get("NumberOfCpuCoresRequired", 0)),
            placement=spec.get("SchedulingConfig", {}).get("PlacementStrategy", "SPREAD"), routing=routing,
            startup_timeout=float(timeout) if timeout is not None else None)


@dataclass(frozen=True)
class ComponentTarget:
    name: str
    variant: str
    copies: int  # running now (an adapter: its base's)
    served_by: str  # the component whose copies take its calls: itself, or an adapter's base
    status: str = ""  # its InferenceComponentStatus (Updating during a rolling update)


@dataclass(frozen=True)
class VariantWeight:
    name: str
    weight: float
    routing_strategy: str


@dataclass(frozen=True)
class EndpointSnapshot:
    """An endpoint as readers outside the control plane see it (runtime.api.Target)."""

    name: str
    arn: str
    created: float
    region: str
    account: str
    status: str
    failure_reason: str | None
    fleet: Any  # the fleet.api.FleetView serving `variants`, or None
    variants: tuple[VariantWeight, ...]
    hosts_components: bool = False  # its variants have no model: invocations name a component
    components: dict[str, ComponentTarget] = field(default_factory=dict)
    async_config: dict[str, Any] | None = None
    data_capture: dict[str, Any] | None = None
    cross_region: dict[str, Any] | None = None  # the config's CrossRegionTrafficConfig
    green: tuple[float, "EndpointSnapshot"] | None = None  # a guarded update's new fleet and its share
    deploying_config: str | None = None  # during an update, the config this fleet runs (metrics' EndpointConfigName)


@dataclass
class InferenceRouter:
    """An inference router: routing targets, each a list of destinations (endpoint or
    inference-component ARNs, in any Region), as CreateInferenceRouter and
    UpdateInferenceRouter give them."""

    name: str
    arn: str
    created: float
    modified: float
    status: Status
    targets: list[dict[str, Any]]
    client_token: str | None = None
    status_reason: str | None = None


@dataclass
class AIWorkloadConfig:
    """CreateAIWorkloadConfig's resource: its request members, and the spec as read."""

    name: str
    arn: str
    created: float
    spec: dict[str, Any]  # DatasetConfig and AIWorkloadConfigs, as given
    workload: dict[str, Any]  # the WorkloadSpec read and checked (control/workload_spec.py)


@dataclass
class AIBenchmarkJob:
    """CreateAIBenchmarkJob's resource. The workload is the config's as it was when the job was
    created: deleting or replacing the config later does not change a job."""

    name: str
    arn: str
    created: float
    modified: float
    status: Status
    spec: dict[str, Any]  # the request's members, as Describe repeats them
    workload_config: str  # its name
    workload: dict[str, Any]
    datasets: list[dict[str, Any]]  # the config's DatasetConfig channels
    endpoint_name: str
    components: list[str]
    failure_reason: str | None = None
    started: float | None = None
    ended: float | None = None


@dataclass(frozen=True)
class BenchmarkJobSnapshot:
    """What a benchmark runner needs of a job: where to send the load and what to write."""

    name: str
    arn: str
    region: str
    account: str
    endpoint_name: str
    components: tuple[str, ...]
    workload: dict[str, Any]
    datasets: tuple[dict[str, Any], ...]
    output: str  # OutputConfig.S3OutputLocation
    log_group: str
    log_stream: str


@dataclass(frozen=True)
class DestinationSnapshot:
    """runtime.api.RouterDestination: a destination resolved for one invocation."""

    arn: str
    region: str
    endpoint: str | None  # the endpoint that serves it (an inference component's host); None: not found
    component: str | None = None
    account: str | None = None  # its owner
    allowed: bool = True  # the router's account may invoke it (its own, or the owner's endpoint policy says so)


@dataclass(frozen=True)
class RoutingTargetSnapshot:
    """runtime.api.RoutingTarget."""

    router_arn: str
    name: str
    destinations: tuple[DestinationSnapshot, ...]
    async_config: dict[str, Any] | None  # its AsyncInferenceConfig; None: real-time
    preference: str = "LocalRegionFirst"  # its RoutingPreference


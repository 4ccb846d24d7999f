"""The fleet's interface: what the control plane hands it, and what others may read of it.

In: a `VariantPlan` per production variant, plain data with nothing of the control plane's
resources, given to `Deployer.start`. Out: a `Fleet`, which the control plane may rescale and
stop, and which the runtime and `/_emu` read through `FleetView` (routable instances, the
variant's router, every instance). Nothing in `fleet/` imports `control/`; the control plane
imports this module.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

# What a caller of an instance handles: the container client's connection and answer head,
# and the in-flight slot's refusal and outcome. Declared here, so that the runtime needs no
# other module of the fleet.
from sagemaker_emu.fleet.container import Connection, Response
from sagemaker_emu.fleet.load import Saturated, SlotOutcome

if TYPE_CHECKING:
    from sagemaker_emu.fleet.connections import ConnectionPool
    from sagemaker_emu.fleet.load import Load
    from sagemaker_emu.kv.index import KvIndex
    from sagemaker_emu.routing.strategies import Strategy


class ObjectStore(Protocol):
    """Where s3:// model data comes from (neighbours/s3.py implements it)."""

    def fetch(self, url: str, prefix: bool = False) -> Path:
        """A local copy of the object at `url` (with `prefix`: a directory of every object
        under it), kept while the object is unchanged. Raises LookupError with the endpoint's
        FailureReason when it cannot be had."""


class DeploymentFailed(Exception):
    """The fleet could not be brought up; the message is the endpoint's FailureReason."""


@dataclass(frozen=True)
class ServerlessPlan:
    """A serverless variant: one worker, started on a call after idling (a cold start), taking
    at most `max_concurrency` calls at once; `provisioned` > 0 keeps it warm."""

    max_concurrency: int
    provisioned: int = 0


@dataclass(frozen=True)
class PoolPlan:
    """One of a variant's InstancePools: a type, its priority (1 first), and the model its
    instances run when ModelNameOverride names another (else the variant's)."""

    instance_type: str
    priority: int
    model_name: str = ""
    containers: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ScaleIn:
    """ManagedInstanceScaling.ScaleInPolicy: IDLE_RELEASE releases instances left with no copies;
    CONSOLIDATION also moves copies onto fewer instances, at most `step` instances released per
    round, a round once `cooldown_s` of the emulator's clock has passed since the last change."""

    strategy: str = "IDLE_RELEASE"
    step: int = 1
    cooldown_s: float = 1200.0


@dataclass(frozen=True)
class VariantPlan:
    """One production variant as the fleet needs it."""

    name: str
    model_name: str
    containers: list[dict[str, Any]]  # the model's container definitions (Image, ModelDataUrl, Environment)
    instance_count: int
    routing: dict[str, Any] = field(default_factory=dict)  # the variant's RoutingConfig
    startup_timeout: float | None = None  # ContainerStartupHealthCheckTimeoutInSeconds
    instance_type: str = ""
    # ManagedInstanceScaling (inference-component variants): instances come and go with copies
    min_instances: int | None = None
    max_instances: int | None = None
    # No containers: an inference-component variant, whose instances run nothing until
    # components place copies on them (`Fleet.set_copies`).
    serverless: ServerlessPlan | None = None
    inference_mode: str = "Serial"  # InferenceExecutionConfig.Mode of a model with several containers
    # InstancePools, by priority: instances come from the first pool with capacity, and
    # leave from the last first. Empty: one pool of `instance_type`.
    pools: tuple[PoolPlan, ...] = ()
    scale_in: ScaleIn = ScaleIn()


def component_key(name: str) -> str:
    """The FleetView key of an inference component's copies (variant names have no colon)."""
    return f"ic:{name}"


@dataclass(frozen=True)
class ComponentPlan:
    """An inference component as the fleet needs it: what one copy runs and reserves."""

    name: str
    variant: str  # the inference-component variant whose instances hold the copies
    model_name: str
    containers: list[dict[str, Any]]
    accelerators: float = 0.0  # NumberOfAcceleratorDevicesRequired
    memory_mb: int = 0  # MinMemoryRequiredInMb
    cpus: float = 0.0  # NumberOfCpuCoresRequired
    placement: str = "SPREAD"  # SchedulingConfig.PlacementStrategy
    routing: dict[str, Any] = field(default_factory=dict)  # the variant's RoutingConfig, per component
    startup_timeout: float | None = None
    # Specifications: what a copy runs and reserves on a host of each instance type (a host of a
    # type not named takes no copy); empty: the fields above, on any host
    per_type: dict[str, "ComponentPlan"] = field(default_factory=dict)


@dataclass(frozen=True)
class Copies:
    """What `set_copies` reached: copies running now, and why fewer than asked, if so."""

    current: int
    failure: str | None = None


class InstanceView(Protocol):
    """One instance as the runtime and `/_emu` see it: where to send a call, and what to read."""

    id: str
    variant: str
    port: int
    restarts: int
    log_path: Path
    load: "Load"  # in-flight accounting: the runtime enters `load.dispatch()` around a call
    in_flight: int  # the load's count, mirrored as a plain attribute (strategies read it per pick)
    kv: "KvIndex"  # what its prefix cache holds
    pool: "ConnectionPool"  # keep-alive connections to its container
    suspect: bool  # the runtime sets it when a connection is refused; the next good /ping clears it
    placed_on: str | None  # an inference-component copy: the instance it is placed on
    instance_type: str  # its ml.* type (a copy: its host's); "" for serverless
    model_name: str  # the SageMaker model it runs: its pool's or its specification's
    in_pools: bool  # its variant has several InstancePools (CloudWatch adds an InstanceType dimension)
    host: str

    @property
    def pid(self) -> int | None: ...

    @property
    def health(self) -> Any: ...

    @property
    def node(self) -> str | None:
        """The Ray node it runs on (`--fleet ray`); None on this machine."""

    @property
    def routable(self) -> bool: ...

    @property
    def kv_block_tokens(self) -> int: ...

    def exited(self) -> bool: ...

    def served_prompt(self, prompt_blocks: Sequence[str]) -> None: ...

    def refresh_kv(self, max_age_s: float) -> None:
        """Ask the container for its prefix cache's events if `kv` is older than `max_age_s`."""

    def log_tail(self, lines: int = 50) -> list[str]: ...


class TargetNotFound(LookupError):
    """No model at `<prefix><TargetModel>`: the caller's error (ValidationError)."""


class LoadFailed(Exception):
    """The container did not load the model: its status and message (a ModelError)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Loaded:
    """A multi-model endpoint's model made ready on an instance for one call, and what that
    took (SageMaker's model loading metrics)."""

    target: str  # the call's TargetModel
    name: str  # the opaque name the container knows it by
    hit: bool  # it was loaded already
    wait_s: float = 0.0  # ModelLoadingWaitTime
    download_s: float = 0.0  # ModelDownloadingTime
    load_s: float = 0.0  # ModelLoadingTime
    unloads_s: list[float] = field(default_factory=list)  # ModelUnloadingTime, per model unloaded to make room


class MultiModelView(Protocol):
    """A multi-model variant (Mode MultiModel): its models are loaded per call (fleet/multi_model.py)."""

    prefix: str  # the ModelDataUrl a TargetModel is under

    def holding(self, instances: Sequence[InstanceView], target: str) -> tuple[InstanceView, ...]:
        """The instances with the model loaded: a call for it goes to one of them."""
        ...

    def ensure(self, instance: InstanceView, target: str) -> Loaded:
        """Load the model on the instance unless it is there, and keep it until `done`.
        Raises TargetNotFound or LoadFailed."""
        ...

    def done(self, instance: InstanceView, loaded: Loaded) -> None:
        """The call `ensure` readied the model for has finished."""
        ...

    def loaded(self, instance: InstanceView) -> list[str]:
        """The TargetModels the instance holds, least recently used first."""
        ...


class FleetView(Protocol):
    """What the runtime and `/_emu` read: never processes to act on."""

    def instances(self, variant: str) -> Sequence[InstanceView]:
        """The variant's instances that may take a request now (the same tuple until one's
        routability changes)."""
        ...

    def router(self, variant: str) -> "Strategy":
        """The variant's routing strategy."""
        ...

    def placement(self, variant: str) -> list[dict[str, Any]]:
        """An inference-component variant's instances and the copies each holds (else [])."""
        ...

    def all_instances(self) -> Sequence[InstanceView]:
        """Every instance, for introspection (`/_emu`, metrics)."""
        ...

    def instance_type(self, variant: str) -> str:
        """The variant's ml.* instance type, its first pool's with InstancePools ("" for serverless)."""
        ...

    def pool_counts(self, variant: str) -> dict[str, int]:
        """The variant's instances running now (an inference-component variant: its hosts), by
        type: every pool's, in priority order (1 first)."""
        ...

    def serverless(self, variant: str) -> ServerlessPlan | None:
        """A serverless variant's MaxConcurrency and ProvisionedConcurrency; None for others."""
        ...

    def cold_start(self, variant: str) -> float | None:
        """Start a serverless variant that has scaled to zero; block until it answers /ping.
        Seconds it took (ModelSetupTime), or None if it was warm. Raises DeploymentFailed."""
        ...

    def direct_targets(self, variant: str) -> tuple[str, ...] | None:
        """The ContainerHostnames a call must choose among (a model of several containers in
        Direct mode); None for every other variant."""
        ...

    def multi_model(self, variant: str) -> "MultiModelView | None":
        """A multi-model variant's model loading (which instance holds what); None for others."""
        ...


class Fleet(FleetView, Protocol):
    def scale(self, variant: str, instance_count: int) -> None: ...

    def set_serverless(self, variant: str, plan: ServerlessPlan) -> None:
        """ServerlessUpdateConfig: new MaxConcurrency and ProvisionedConcurrency."""
        ...

    def set_copies(self, plan: ComponentPlan, count: int) -> Copies:
        """Start or stop copies of the component until `count` run, each where it fits;
        blocks until new copies pass /ping. Raises DeploymentFailed if a copy cannot start."""
        ...

    def replace_copies(self, plan: ComponentPlan, count: int, batch: int, wait_s: float,
                       halt: Callable[[], bool] | None = None) -> Copies | None:
        """Roll the component's copies over to `plan`: start `batch` new copies, route to them
        once they pass /ping, drain and stop as many old ones, wait `wait_s`, repeat; then
        start or stop copies until `count` run. Calls in flight on old copies finish there.
        With `halt` (an auto-rollback's alarms), every batch bakes `wait_s` while `halt` is
        asked; when it says stop, the rollover ends where it is and None is returned."""
        ...

    def kill(self, instance_id: str) -> bool:
        """SIGKILL the instance's (or copy's) process, as a crash would; it is restarted as
        after one. False when no running instance has that id."""
        ...

    def remove_component(self, name: str) -> None:
        """Stop every copy of the component (letting calls in flight finish)."""
        ...

    def stop(self, drain: bool = False) -> None:
        """Stop every instance; with `drain`, first let requests in flight finish."""
        ...


class Deployer(Protocol):
    def start(self, endpoint_name: str, plans: list[VariantPlan], cancel: threading.Event | None = None,
              place: str | None = None) -> Fleet:
        """Block until every instance of every variant is healthy, or raise DeploymentFailed;
        `cancel` set (by a reset) stops the start and whatever it started. `place` names the
        endpoint's files apart from every other account's and Region's (default: its name)."""
        ...

    def forget(self, place: str) -> None:
        """The endpoint is deleted and its fleets stopped: remove what they left (files, logs)."""
        ...

    def log_files(self, place: str) -> list[tuple[str, str, int, Path]]:
        """Every log an instance or copy of the endpoint has written, in any deployment, failed
        starts included: (variant or component key, instance id, deployment number, path)."""
        ...


__all__ = ["Connection", "Response", "Saturated", "SlotOutcome"]  # re-exported: see above

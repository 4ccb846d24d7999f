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
from typing import TYPE_CHECKING, Any, Protocol, Sequence

if TYPE_CHECKING:
    from sagemaker_emu.fleet.connections import ConnectionPool
    from sagemaker_emu.fleet.load import Load
    from sagemaker_emu.kv.index import KvIndex
    from sagemaker_emu.routing.strategies import Strategy


class DeploymentFailed(Exception):
    """The fleet could not be brought up; the message is the endpoint's FailureReason."""


@dataclass(frozen=True)
class VariantPlan:
    """One production variant as the fleet needs it."""

    name: str
    model_name: str
    containers: list[dict[str, Any]]  # the model's container definitions (Image, ModelDataUrl, Environment)
    instance_count: int
    routing: dict[str, Any] = field(default_factory=dict)  # the variant's RoutingConfig
    startup_timeout: float | None = None  # ContainerStartupHealthCheckTimeoutInSeconds


class InstanceView(Protocol):
    """One instance as the runtime and `/_emu` see it: where to send a call, and what to read."""

    id: str
    variant: str
    port: int
    restarts: int
    log_path: Path
    load: "Load"  # in-flight accounting: the runtime enters `load.dispatch()` around a call
    kv: "KvIndex"  # what its prefix cache holds
    pool: "ConnectionPool"  # keep-alive connections to its container
    suspect: bool  # the runtime sets it when a connection is refused; the next good /ping clears it

    @property
    def pid(self) -> int | None: ...

    @property
    def health(self) -> Any: ...

    @property
    def routable(self) -> bool: ...

    @property
    def kv_block_tokens(self) -> int: ...

    def exited(self) -> bool: ...

    def served_prompt(self, prompt_blocks: Sequence[str]) -> None: ...

    def log_tail(self, lines: int = 50) -> list[str]: ...


class FleetView(Protocol):
    """What the runtime and `/_emu` read: never processes to act on."""

    def instances(self, variant: str) -> Sequence[InstanceView]:
        """The variant's instances that may take a request now (the same tuple until one's
        routability changes)."""
        ...

    def router(self, variant: str) -> "Strategy":
        """The variant's routing strategy."""
        ...

    def all_instances(self) -> list[InstanceView]:
        """Every instance, for introspection (`/_emu`, metrics)."""
        ...


class Fleet(FleetView, Protocol):
    def scale(self, variant: str, instance_count: int) -> None: ...

    def stop(self, drain: bool = False) -> None:
        """Stop every instance; with `drain`, first let requests in flight finish."""
        ...


class Deployer(Protocol):
    def start(self, endpoint_name: str, plans: list[VariantPlan], cancel: threading.Event) -> Fleet:
        """Block until every instance of every variant is healthy, or raise DeploymentFailed;
        `cancel` set (by a reset) stops the start and whatever it started."""
        ...

    def forget(self, endpoint_name: str) -> None:
        """The endpoint is deleted and its fleets stopped: remove what they left (files, logs)."""
        ...

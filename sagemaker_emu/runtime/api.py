"""What the runtime needs from the control plane, declared by the runtime: a `Directory` that
answers which endpoint an invocation reaches. The control plane's store provides it; the
runtime imports nothing from `control/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from sagemaker_emu.fleet.api import FleetView
from sagemaker_emu.bodies import Body


class VariantTarget(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def weight(self) -> float: ...


class ComponentTarget(Protocol):
    """An inference component on the endpoint; its copies are `component_key(name)` in the fleet."""

    @property
    def name(self) -> str: ...

    @property
    def variant(self) -> str: ...

    @property
    def copies(self) -> int: ...

    @property
    def served_by(self) -> str: ...  # whose copies take its calls: itself, or an adapter's base


class Target(Protocol):
    """An endpoint that may take invocations, as it was when the call arrived."""

    @property
    def name(self) -> str: ...

    @property
    def arn(self) -> str: ...

    @property
    def created(self) -> float: ...  # with the ARN, tells a re-created endpoint apart (sessions)

    @property
    def region(self) -> str: ...

    @property
    def account(self) -> str: ...

    @property
    def fleet(self) -> FleetView: ...

    @property
    def variants(self) -> Sequence[VariantTarget]: ...

    @property
    def hosts_components(self) -> bool: ...  # invocations must name an inference component

    @property
    def components(self) -> Mapping[str, ComponentTarget]: ...

    @property
    def async_config(self) -> Mapping[str, Any] | None: ...  # the config's AsyncInferenceConfig

    @property
    def data_capture(self) -> Mapping[str, Any] | None: ...  # its DataCaptureConfig, when enabled

    @property
    def cross_region(self) -> Mapping[str, Any] | None: ...  # its CrossRegionTrafficConfig

    @property
    def green(self) -> tuple[float, "Target"] | None: ...  # a guarded update's new fleet, and its share

    @property
    def deploying_config(self) -> str | None: ...  # during an update, the config this fleet runs


class ResultStore(Protocol):
    """Where asynchronous inference reads inputs and leaves results: S3 and SNS, as the
    composition root provides them (neighbours/results.py)."""

    def download(self, url: str, path: Path, max_bytes: int) -> int:
        """Copy the object at an s3:// (or https://) URL to `path`, a chunk at a time, and
        return its length; LookupError with the reason if it cannot be read or is larger
        than `max_bytes`."""

    def write(self, url: str, body: Body, content_type: str) -> None:
        """Put `body` (bytes, or a file's contents, sent from the file) at the URL."""

    def notify(self, topic_arn: str, message: Mapping[str, Any]) -> None:
        """Publish `message` (as JSON) to an SNS topic."""


class RouterDestination(Protocol):
    """One destination of an inference router's routing target, as the control plane resolves it."""

    @property
    def arn(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def endpoint(self) -> str | None: ...  # the endpoint that serves it (an inference component's host); None: not found

    @property
    def component(self) -> str | None: ...  # an inference component's name

    @property
    def account(self) -> str | None: ...  # its owner

    @property
    def allowed(self) -> bool: ...  # the router's account may invoke it (its own, or by the owner's endpoint policy)


class RoutingTarget(Protocol):
    @property
    def router_arn(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def destinations(self) -> Sequence[RouterDestination]: ...

    @property
    def async_config(self) -> Mapping[str, Any] | None: ...  # its AsyncInferenceConfig; None: real-time

    @property
    def preference(self) -> str: ...  # its RoutingPreference: LocalRegionFirst or InstancePoolOrder


class Routers(Protocol):
    def routing_target(self, region: str, router: str, target: str, account: str | None = None) -> RoutingTarget:
        """The routing target a router invocation names, or InvalidInput in SageMaker's words
        (no such router in service, no such target)."""
        ...


class Directory(Protocol):
    def serving(self, region: str, endpoint_name: str, account: str | None = None) -> Target:
        """The endpoint, or InvalidInput in SageMaker's words: not found (the name matches
        exactly), or NotServing (it exists but is not InService or Updating)."""
        ...

"""What the control plane publishes (sagemaker_emu/events.py): the parts that keep something
per endpoint or component forget it when it is deleted; a status change is there for any
part that shows or waits on statuses."""

from __future__ import annotations

from dataclasses import dataclass

from sagemaker_emu.control.resources import BenchmarkJobSnapshot, EndpointSnapshot


@dataclass(frozen=True)
class EndpointDeleted:
    endpoint: EndpointSnapshot  # as it was when its deletion finished


@dataclass(frozen=True)
class ComponentDeleted:
    endpoint_name: str
    component: str


@dataclass(frozen=True)
class BenchmarkJobStarted:
    """An AI benchmark job was created: its runner starts the load (handlers must not call the
    store: they run with its lock held)."""

    job: BenchmarkJobSnapshot


@dataclass(frozen=True)
class BenchmarkJobStopping:
    """StopAIBenchmarkJob: the runner ends the load and reports the job Stopped."""

    region: str
    account: str
    name: str


@dataclass(frozen=True)
class StatusChanged:
    region: str
    kind: str  # "endpoint" or "inference-component" (the ARN's resource type)
    name: str
    status: str  # the new status, as DescribeEndpoint (or DescribeInferenceComponent) shows it

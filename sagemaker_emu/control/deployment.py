"""The seam between the control plane and whatever runs an endpoint's instances.

The control plane asks a `Deployer` to bring up a fleet for a set of variants and gets
back a `Fleet` it can rescale and stop; it never sees processes or ports.
"""

from __future__ import annotations

import time
from typing import Protocol

from sagemaker_emu.control.resources import Variant

# Environment knob of the built-in images: seconds an instance takes to become healthy.
STARTUP_DELAY_ENV = "SAGEMAKER_EMU_STARTUP_DELAY"


class DeploymentFailed(Exception):
    """The fleet could not be brought up; the message is the endpoint's FailureReason."""


class Fleet(Protocol):
    def scale(self, variant: str, instance_count: int) -> None: ...

    def stop(self) -> None: ...


class Deployer(Protocol):
    def start(self, endpoint_name: str, variants: list[Variant]) -> Fleet:
        """Block until every instance of every variant is healthy, or raise DeploymentFailed."""
        ...


class PlaceholderFleet:
    """Instances that exist only as counts: enough for the control plane's lifecycle."""

    def __init__(self, variants: list[Variant]) -> None:
        self.sizes = {v.name: v.instance_count for v in variants}
        self.stopped = False

    def scale(self, variant: str, instance_count: int) -> None:
        self.sizes[variant] = instance_count

    def stop(self) -> None:
        self.stopped = True


class PlaceholderDeployer:
    """Ready as soon as each model's simulated startup delay has passed."""

    def start(self, endpoint_name: str, variants: list[Variant]) -> PlaceholderFleet:
        delays = [
            float(c.get("Environment", {}).get(STARTUP_DELAY_ENV, 0) or 0)
            for v in variants
            for m in v.models
            for c in containers(m.spec)
        ]
        if delays and max(delays) > 0:
            time.sleep(max(delays))
        return PlaceholderFleet(variants)


def containers(model_spec: dict) -> list[dict]:
    """A model's container definitions: PrimaryContainer, or the Containers list."""
    if "PrimaryContainer" in model_spec:
        return [model_spec["PrimaryContainer"]]
    return list(model_spec.get("Containers", []))

"""The seam between the control plane and whatever runs an endpoint's instances.

The control plane asks a `Deployer` to bring up a fleet for a set of variants and gets
back a `Fleet` it can rescale and stop; it never sees processes or ports.
"""

from __future__ import annotations

import threading
from typing import Protocol

from sagemaker_emu.control.resources import Variant

class DeploymentFailed(Exception):
    """The fleet could not be brought up; the message is the endpoint's FailureReason."""


class Fleet(Protocol):
    def scale(self, variant: str, instance_count: int) -> None: ...

    def stop(self, drain: bool = False) -> None:
        """Stop every instance; with `drain`, first let requests in flight finish."""
        ...


class Deployer(Protocol):
    def start(self, endpoint_name: str, variants: list[Variant], cancel: threading.Event) -> Fleet:
        """Block until every instance of every variant is healthy, or raise DeploymentFailed;
        `cancel` set (by a reset) stops the start and whatever it started."""
        ...

    def forget(self, endpoint_name: str) -> None:
        """The endpoint is deleted and its fleets stopped: remove what they left (files, logs)."""
        ...


def containers(model_spec: dict) -> list[dict]:
    """A model's container definitions: PrimaryContainer, or the Containers list."""
    if "PrimaryContainer" in model_spec:
        return [model_spec["PrimaryContainer"]]
    return list(model_spec.get("Containers", []))

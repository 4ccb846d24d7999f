"""Thread-safe registry of control-plane resources, one `Backend` per account and region."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Callable, Iterable

from sagemaker_emu.control.quotas import Quotas
from sagemaker_emu.control.resources import TRANSITIONAL, Endpoint, EndpointConfig, Model, Variant
from sagemaker_emu.errors import NotFound
from sagemaker_emu.fleet.api import Deployer

# ARN resource type -> the noun SageMaker uses in its messages.
KINDS = {"model": "model", "endpoint-config": "endpoint configuration", "endpoint": "endpoint"}


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class Backend:
    """All resources of one account in one region. Names are unique case-insensitively."""

    def __init__(self, region: str, account: str, deployer: Deployer, clock: Callable[[], float] = time.time,
                 quotas: Quotas | None = None, on_deleted: Callable[[Endpoint], None] = lambda endpoint: None,
                 min_transition: float = 0.0):
        self.region = region
        self.account = account
        self.deployer = deployer
        self.quotas = quotas or Quotas()
        self.on_deleted = on_deleted  # what others keep per endpoint (metrics, sessions) goes too
        self.min_transition = min_transition  # seconds a Creating/Updating/Deleting status lasts at least
        self.clock = clock
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)  # notified on every endpoint status change
        self.models: dict[str, Model] = {}
        self.endpoint_configs: dict[str, EndpointConfig] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.tags: dict[str, list[dict[str, str]]] = {}  # ARN (lower-case) -> tags in order added

    def now(self) -> float:
        return round(self.clock(), 3)

    def arn(self, resource_type: str, name: str) -> str:
        return f"arn:{partition(self.region)}:sagemaker:{self.region}:{self.account}:{resource_type}/{name}"

    def _table(self, resource_type: str) -> dict:
        return {"model": self.models, "endpoint-config": self.endpoint_configs, "endpoint": self.endpoints}[
            resource_type
        ]

    def get(self, resource_type: str, name: str):
        """The resource, or NotFound in SageMaker's words."""
        found = self._table(resource_type).get(name.lower())
        if found is None:
            raise NotFound(KINDS[resource_type], self.arn(resource_type, name))
        return found

    def model(self, name: str) -> Model:
        return self.get("model", name)

    def endpoint_config(self, name: str) -> EndpointConfig:
        return self.get("endpoint-config", name)

    def endpoint(self, name: str) -> Endpoint:
        return self.get("endpoint", name)

    def resource_by_arn(self, arn: str):
        """The model, endpoint config or endpoint an ARN names, or None."""
        prefix = self.arn("", "")[:-1]  # arn:aws:sagemaker:<region>:<account>:
        if not arn.startswith(prefix) or "/" not in arn:
            return None
        resource_type, _, name = arn[len(prefix) :].partition("/")
        if resource_type not in KINDS:
            return None
        return self._table(resource_type).get(name.lower())

    def forget(self, endpoint: Endpoint) -> None:
        """Remove a deleted endpoint (its fleets stopped) and everything kept for it. Under the lock."""
        del self.endpoints[endpoint.name.lower()]
        self.tags.pop(endpoint.arn.lower(), None)
        self.deployer.forget(endpoint.name)
        self.on_deleted(endpoint)

    def check_quota(self, adding: Iterable[tuple[Variant, int]]) -> None:
        """ResourceLimitExceeded unless `count` more instances of each variant's type fit
        beside every instance the region's endpoints run or are bringing up."""
        in_use: Counter = Counter()
        for ep in self.endpoints.values():
            deployed = ep.variants + (ep.pending.variants if ep.pending else [])
            for v in deployed:
                if not v.serverless:
                    in_use[v.spec.get("InstanceType", "")] += max(v.instance_count, 1)
        delta: Counter = Counter()
        for v, count in adding:
            if not v.serverless:
                delta[v.spec.get("InstanceType", "")] += count
        self.quotas.check(in_use, delta)

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def wait_settled(self, name: str, timeout: float) -> None:
        """Wait (at most `timeout` s) until endpoint `name` is gone or in a steady status."""

        def settled() -> bool:
            ep = self.endpoints.get(name.lower())
            return ep is None or ep.status not in TRANSITIONAL

        with self.changed:
            self.changed.wait_for(settled, timeout=timeout)

    def stop_all(self) -> None:
        """Stop every fleet and forget every resource (used by reset and shutdown)."""
        with self.lock:
            fleets = [ep.fleet for ep in self.endpoints.values() if ep.fleet is not None]
            for ep in self.endpoints.values():
                if ep.pending is not None:
                    ep.pending.cancel.set()  # a fleet still starting stops starting
            names = [ep.name for ep in self.endpoints.values()]
            self.models.clear()
            self.endpoint_configs.clear()
            self.endpoints.clear()
            self.tags.clear()
            self.changed.notify_all()
        for fleet in fleets:
            fleet.stop()
        for name in names:
            self.deployer.forget(name)


class Backends:
    """Lazily created backends, keyed by region (one account per emulator)."""

    def __init__(self, account: str, deployer: Deployer, quotas: Quotas | None = None,
                 on_deleted: Callable[[Endpoint], None] = lambda endpoint: None, min_transition: float = 0.0) -> None:
        self.account = account
        self.min_transition = min_transition
        self.deployer = deployer
        self.quotas = quotas or Quotas()
        self.on_deleted = on_deleted
        self._lock = threading.Lock()
        self._by_region: dict[str, Backend] = {}

    def __call__(self, region: str) -> Backend:
        with self._lock:
            backend = self._by_region.get(region)
            if backend is None:
                backend = self._by_region[region] = Backend(region, self.account, self.deployer, quotas=self.quotas,
                                                               on_deleted=lambda ep: self.on_deleted(ep),
                                                               min_transition=self.min_transition)
            return backend

    def all(self) -> list[Backend]:
        with self._lock:
            return list(self._by_region.values())

    def reset(self) -> None:
        for backend in self.all():
            backend.stop_all()

"""SageMaker capacities as Application Auto Scaling reads and sets them: a variant's instance
count or provisioned concurrency, an inference component's copy count. Setting one runs the
very operation a user would call (UpdateEndpointWeightsAndCapacities,
UpdateInferenceComponentRuntimeConfig) in the store, so scaling starts and stops real
processes and moves the endpoint through Updating exactly as those calls do."""

from __future__ import annotations

from sagemaker_emu.control.registry import OPERATIONS, Call
from sagemaker_emu.control.store import Backends
from sagemaker_emu.errors import EmuError

INSTANCES = "sagemaker:variant:DesiredInstanceCount"
PROVISIONED = "sagemaker:variant:DesiredProvisionedConcurrency"
COPIES = "sagemaker:inference-component:DesiredCopyCount"
DIMENSIONS = (INSTANCES, PROVISIONED, COPIES)


def parse(resource_id: str, dimension: str) -> tuple[str, str | None]:
    """`endpoint/<ep>/variant/<v>` -> (ep, v); `inference-component/<ic>` -> (ic, None)."""
    parts = resource_id.split("/")
    if dimension == COPIES and len(parts) == 2 and parts[0] == "inference-component":
        return parts[1], None
    if dimension in (INSTANCES, PROVISIONED) and len(parts) == 4 and parts[0] == "endpoint" and parts[2] == "variant":
        return parts[1], parts[3]
    raise ValueError(resource_id)


class SageMakerCapacity:
    def __init__(self, backends: Backends) -> None:
        self.backends = backends

    def _run(self, region: str, operation: str, params: dict) -> dict:
        return self.backends(region).run(OPERATIONS[operation], params, Call())

    def current(self, region: str, resource_id: str, dimension: str) -> int:
        """The capacity now; raises EmuError (SageMaker's message) if the resource is gone."""
        name, variant = parse(resource_id, dimension)
        if dimension == COPIES:
            described = self._run(region, "DescribeInferenceComponent", {"InferenceComponentName": name})
            return described["RuntimeConfig"]["DesiredCopyCount"]
        described = self._run(region, "DescribeEndpoint", {"EndpointName": name})
        for v in described.get("ProductionVariants", []):
            if v["VariantName"] == variant:
                if dimension == PROVISIONED:
                    return (v.get("CurrentServerlessConfig") or {}).get("ProvisionedConcurrency", 0)
                return v.get("DesiredInstanceCount", v.get("CurrentInstanceCount", 0))
        raise EmuError(f"Endpoint {name} has no production variant {variant}.")

    def settled(self, region: str, resource_id: str, dimension: str) -> bool:
        name, _ = parse(resource_id, dimension)
        if dimension == COPIES:
            status = self._run(region, "DescribeInferenceComponent", {"InferenceComponentName": name})
            return status["InferenceComponentStatus"] == "InService"
        return self._run(region, "DescribeEndpoint", {"EndpointName": name})["EndpointStatus"] == "InService"

    def set(self, region: str, resource_id: str, dimension: str, value: int) -> bool:
        """Ask for `value`; False (nothing done) while the resource is changing (Updating, Creating)."""
        if not self.settled(region, resource_id, dimension):
            return False
        name, variant = parse(resource_id, dimension)
        if dimension == COPIES:
            self._run(region, "UpdateInferenceComponentRuntimeConfig",
                      {"InferenceComponentName": name, "DesiredRuntimeConfig": {"CopyCount": value}})
        elif dimension == PROVISIONED:
            self._run(region, "UpdateEndpointWeightsAndCapacities", {"EndpointName": name, "DesiredWeightsAndCapacities": [
                {"VariantName": variant, "ServerlessUpdateConfig": {"ProvisionedConcurrency": value}}]})
        else:
            self._run(region, "UpdateEndpointWeightsAndCapacities", {"EndpointName": name, "DesiredWeightsAndCapacities": [
                {"VariantName": variant, "DesiredInstanceCount": value}]})
        return True

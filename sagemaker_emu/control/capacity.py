"""SageMaker capacities as Application Auto Scaling reads and sets them: a variant's instance
count or provisioned concurrency, an inference component's copy count.

Reading asks the store, through the same helpers DescribeEndpoint and
DescribeInferenceComponent answer with. Setting runs the very operation a user would call
(UpdateEndpointWeightsAndCapacities, UpdateInferenceComponentRuntimeConfig), the function
itself, so scaling starts and stops real processes and moves the endpoint through Updating
exactly as those calls do."""

from __future__ import annotations

from sagemaker_emu.control import inference_components, operations
from sagemaker_emu.control.registry import Call
from sagemaker_emu.control.resources import Status
from sagemaker_emu.control.store import Backend, Backends
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

    def current(self, region: str, resource_id: str, dimension: str) -> int:
        """The capacity now; raises EmuError (SageMaker's message) if the resource is gone."""
        name, variant = parse(resource_id, dimension)

        def read(backend: Backend) -> int:
            if dimension == COPIES:
                return inference_components.copy_counts(backend, backend.inference_component(name))[0]
            endpoint = backend.endpoint(name)
            found = endpoint.variant(variant) if variant else None
            if found is None:
                raise EmuError(f"Endpoint {name} has no production variant {variant}.")
            if dimension == PROVISIONED:
                return (found.spec.get("ServerlessConfig") or {}).get("ProvisionedConcurrency", 0)
            return operations.instance_counts(found, endpoint)[1]

        return self.backends(region).read(read)

    def settled(self, region: str, resource_id: str, dimension: str) -> bool:
        name, _ = parse(resource_id, dimension)
        return self.backends(region).read(lambda backend: (
            backend.inference_component(name) if dimension == COPIES else backend.endpoint(name)).status
            == Status.IN_SERVICE)

    def set(self, region: str, resource_id: str, dimension: str, value: int) -> bool:
        """Ask for `value`; False (nothing done) while the resource is changing (Updating, Creating)."""
        if not self.settled(region, resource_id, dimension):
            return False
        name, variant = parse(resource_id, dimension)
        backend = self.backends(region)
        if dimension == COPIES:
            backend.run(inference_components.update_inference_component_runtime_config,
                        {"InferenceComponentName": name, "DesiredRuntimeConfig": {"CopyCount": value}}, Call())
        else:
            change = ({"ServerlessUpdateConfig": {"ProvisionedConcurrency": value}} if dimension == PROVISIONED
                      else {"DesiredInstanceCount": value})
            backend.run(operations.update_endpoint_weights_and_capacities,
                        {"EndpointName": name, "DesiredWeightsAndCapacities": [{"VariantName": variant, **change}]},
                        Call())
        return True

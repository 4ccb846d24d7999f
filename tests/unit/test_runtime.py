"""The runtime's choices, with a stand-in fleet (the fleet is the neighbour here)."""

import pytest

from sagemaker_emu.control.resources import Endpoint, Status, Variant
from sagemaker_emu.control.store import Backends
from sagemaker_emu.errors import InvalidInput, Unavailable
from sagemaker_emu.routing.strategies import RandomStrategy
from sagemaker_emu.runtime.invoke import Runtime
from sagemaker_emu.runtime.request import InvokeRequest


class EmptyFleet:
    def instances(self, variant):
        return []

    def router(self, variant):
        return RandomStrategy()

    def serverless(self, variant):
        return None

    def multi_model(self, variant):
        return None

    def direct_targets(self, variant):
        return None


def endpoint_with(fleet, status=Status.IN_SERVICE):
    variant = Variant(spec={"VariantName": "v", "ModelName": "m"}, models=[], weight=1.0, instance_count=1, deployed_at=0)
    return Endpoint(name="ep", arn="arn", config_name="c", created=0, modified=0, status=status,
                    variants=[variant], fleet=fleet)


@pytest.fixture
def runtime():
    backends = Backends("123456789012", deployer=None)
    return Runtime(backends, seed=1), backends("us-east-1")


def test_no_routable_instance_is_service_unavailable(runtime):
    rt, backend = runtime
    backend.endpoints["ep"] = endpoint_with(EmptyFleet())
    with pytest.raises(Unavailable):
        rt.invoke(InvokeRequest(endpoint_name="ep", body=b"x", region="us-east-1"))


def test_updating_endpoints_still_serve_and_failed_ones_do_not(runtime):
    rt, backend = runtime
    backend.endpoints["ep"] = endpoint_with(EmptyFleet(), Status.UPDATING)
    with pytest.raises(Unavailable):  # got past the status check to routing
        rt.invoke(InvokeRequest(endpoint_name="ep", body=b"x", region="us-east-1"))
    backend.endpoints["ep"] = endpoint_with(None, Status.FAILED)
    with pytest.raises(InvalidInput, match=r"is not in service \(status: Failed\)"):
        rt.invoke(InvokeRequest(endpoint_name="ep", body=b"x", region="us-east-1"))

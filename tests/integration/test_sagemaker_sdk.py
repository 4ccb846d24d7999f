"""The SageMaker Python SDK (v2) against the emulator, configured only through the
endpoint variables (sagemaker_emu.running()). Skipped where the `sdk` extra is not installed."""

import os

import pytest

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
sagemaker = pytest.importorskip("sagemaker")

import sagemaker_emu  # noqa: E402

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"


@pytest.mark.parametrize("clients", ["env-vars", "emulator-clients"])
def test_model_deploy_waiter_predict_and_delete(clients):
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer

    with sagemaker_emu.running(seed=1) as emu:
        if clients == "env-vars":
            session = sagemaker.Session()  # builds its own clients: the variables point them at us
        else:
            import boto3

            session = sagemaker.Session(boto_session=boto3.Session(region_name=emu.region),
                                        sagemaker_client=emu.client("sagemaker"),
                                        sagemaker_runtime_client=emu.client("sagemaker-runtime"))
        model = Model(image_uri="sagemaker-emu/echo", role=ROLE, sagemaker_session=session, name="sdk-model")
        model.deploy(initial_instance_count=2, instance_type="ml.m5.large", endpoint_name="sdk-ep", wait=False)
        session.sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName="sdk-ep")
        predictor = Predictor("sdk-ep", sagemaker_session=session, serializer=JSONSerializer(),
                              deserializer=JSONDeserializer())
        assert predictor.predict({"inputs": [1, 2, 3]}) == {"inputs": [1, 2, 3]}
        described = emu.client("sagemaker").describe_endpoint(EndpointName="sdk-ep")
        assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
        predictor.delete_endpoint()  # also deletes the endpoint config
        model.delete_model()
        sm = emu.client("sagemaker")
        sm.get_waiter("endpoint_deleted").wait(EndpointName="sdk-ep", WaiterConfig={"MaxAttempts": 1})
        assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []


def test_sdk_errors_are_sagemakers():
    from botocore.exceptions import ClientError
    from sagemaker.predictor import Predictor

    with sagemaker_emu.running():
        with pytest.raises(ClientError) as info:
            Predictor("missing", sagemaker_session=sagemaker.Session()).predict(b"x")
        assert info.value.response["Error"]["Code"] == "ValidationError"
        assert "Endpoint missing of account 123456789012 not found." in str(info.value)

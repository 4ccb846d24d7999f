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


def test_framework_model_with_s3_model_data(tmp_path):
    """As the SDK's own deploy/predict/delete integration tests do: a PyTorchModel whose model
    data is in S3 and whose code is local. The SDK downloads the archive, adds the code, uploads
    the result to its bucket and deploys the real PyTorch DLC image URI; nothing but
    the emulator's variables point it at the emulator, the SDK config file among them (its
    DefaultS3Bucket spares the one call the SDK sends to a fixed AWS host: STS, for the bucket's name)."""
    import io
    import tarfile
    from pathlib import Path

    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.pytorch import PyTorchModel
    from sagemaker.serializers import JSONSerializer

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "linear_model"
    with sagemaker_emu.running(seed=1) as emu:
        s3 = emu.client("s3")
        s3.create_bucket(Bucket="my-models")
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            tar.add(fixture / "weights.json", arcname="weights.json")
        s3.put_object(Bucket="my-models", Key="linear/model.tar.gz", Body=archive.getvalue())
        session = sagemaker.Session()
        model = PyTorchModel(model_data="s3://my-models/linear/model.tar.gz", role=ROLE, entry_point="inference.py",
                             source_dir=str(fixture / "code"), framework_version="2.1", py_version="py310",
                             sagemaker_session=session)
        predictor = model.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="pt-ep",
                                 serializer=JSONSerializer(), deserializer=JSONDeserializer(), wait=False)
        session.sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName="pt-ep")  # wait=True sleeps 30 s first
        assert predictor.predict({"instances": [1, 2]}) == {"predictions": [3.0, 5.0]}
        container = emu.client("sagemaker").describe_model(ModelName=model.name)["PrimaryContainer"]
        assert container["Image"] == "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"
        # the SDK's repacked archive, in the default bucket the config file names
        assert container["ModelDataUrl"].startswith(f"s3://sagemaker-{emu.region}-123456789012/")
        predictor.delete_endpoint()
        model.delete_model()
        sm = emu.client("sagemaker")  # Deleting for a moment, as on AWS (--min-deleting-seconds)
        sm.get_waiter("endpoint_deleted").wait(EndpointName="pt-ep", WaiterConfig={"Delay": 1})
        assert sm.list_endpoints()["Endpoints"] == []


def test_multi_data_model_adds_models_and_predicts_with_target_model(tmp_path):
    """The SDK's multi-model flow: MultiDataModel over an SKLearnModel deploys a Mode MultiModel
    endpoint over an S3 prefix (the model's code uploaded once, as sourcedir.tar.gz), add_model
    uploads weight archives under the prefix, and predict(target_model=...) reaches each;
    nothing is redeployed to add a model."""
    import io
    import json
    import tarfile
    from pathlib import Path

    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.multidatamodel import MultiDataModel
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer
    from sagemaker.sklearn import SKLearnModel

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "linear_model"
    for name, slope in (("two", 2.0), ("ten", 10.0)):
        with tarfile.open(tmp_path / f"{name}.tar.gz", "w:gz") as tar:
            weights = json.dumps({"slope": slope, "intercept": 0.0}).encode()
            info = tarfile.TarInfo("weights.json")
            info.size = len(weights)
            tar.addfile(info, io.BytesIO(weights))
    with sagemaker_emu.running(seed=1) as emu:
        session = sagemaker.Session()
        bucket = session.default_bucket()
        linear = SKLearnModel(model_data=None, role=ROLE, entry_point="inference.py", source_dir=str(fixture / "code"),
                              framework_version="1.2-1", sagemaker_session=session)
        mme = MultiDataModel(name="linear-mme", model_data_prefix=f"s3://{bucket}/mme/", model=linear,
                             sagemaker_session=session)
        mme.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="mme-ep", wait=False)
        session.sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName="mme-ep")
        predictor = Predictor("mme-ep", sagemaker_session=session, serializer=JSONSerializer(),
                              deserializer=JSONDeserializer())
        for name in ("two", "ten"):
            mme.add_model(str(tmp_path / f"{name}.tar.gz"))
        assert sorted(mme.list_models()) == ["ten.tar.gz", "two.tar.gz"]
        assert predictor.predict({"instances": [1, 2]}, target_model="two.tar.gz") == {"predictions": [2.0, 4.0]}
        assert predictor.predict({"instances": [1, 2]}, target_model="ten.tar.gz") == {"predictions": [10.0, 20.0]}
        container = emu.client("sagemaker").describe_model(ModelName="linear-mme")["PrimaryContainer"]
        assert container["Mode"] == "MultiModel" and container["ModelDataUrl"] == f"s3://{bucket}/mme/"
        assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"].startswith("s3://")


def test_pipeline_model_chains_two_framework_models(tmp_path):
    """The SDK's PipelineModel: two SKLearnModels, each with its own code and S3 model data,
    deployed as one model of two containers; the first one's answer is the second one's input."""
    import io
    import tarfile

    from pathlib import Path

    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.pipeline import PipelineModel
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer
    from sagemaker.sklearn import SKLearnModel

    (tmp_path / "featurize").mkdir()
    (tmp_path / "featurize" / "inference.py").write_text(
        "import json\n"
        "def model_fn(model_dir):\n    return None\n"
        "def input_fn(body, content_type):\n    return json.loads(body)['instances']\n"
        "def predict_fn(data, model):\n    return {'instances': [x + 1 for x in data]}\n")
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "linear_model"
    with sagemaker_emu.running(seed=1) as emu:
        s3 = emu.client("s3")
        s3.create_bucket(Bucket="my-models")
        for key, member in (("featurize/model.tar.gz", None), ("linear/model.tar.gz", fixture / "weights.json")):
            archive = io.BytesIO()
            with tarfile.open(fileobj=archive, mode="w:gz") as tar:
                if member is not None:
                    tar.add(member, arcname=member.name)
            s3.put_object(Bucket="my-models", Key=key, Body=archive.getvalue())
        session = sagemaker.Session()
        featurize = SKLearnModel(model_data="s3://my-models/featurize/model.tar.gz", role=ROLE,
                                 entry_point="inference.py", source_dir=str(tmp_path / "featurize"),
                                 framework_version="1.2-1", sagemaker_session=session,
                                 env={"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/json"})
        linear = SKLearnModel(model_data="s3://my-models/linear/model.tar.gz", role=ROLE, entry_point="inference.py",
                              source_dir=str(fixture / "code"), framework_version="1.2-1", sagemaker_session=session)
        pipeline = PipelineModel(models=[featurize, linear], role=ROLE, sagemaker_session=session, name="pipe-model")
        pipeline.deploy(initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="pipe-ep", wait=False)
        session.sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName="pipe-ep")
        predictor = Predictor("pipe-ep", sagemaker_session=session, serializer=JSONSerializer(),
                              deserializer=JSONDeserializer())
        assert predictor.predict({"instances": [1, 2]}) == {"predictions": [5.0, 7.0]}  # 2*(x+1)+1
        described = emu.client("sagemaker").describe_model(ModelName="pipe-model")
        assert [c["Image"] for c in described["Containers"]] == [
            "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"] * 2


def test_hugging_face_llm_flow_with_the_sdks_own_tgi_image():
    """The SDK v2's usual LLM deploy: HuggingFaceModel with get_huggingface_llm_image_uri (AWS's TGI
    image, no model data), predict, predict_stream, the Messages API, and TGI's own limits."""
    import json

    from botocore.exceptions import ClientError
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.huggingface import HuggingFaceModel, get_huggingface_llm_image_uri
    from sagemaker.iterators import LineIterator
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer

    with sagemaker_emu.running(seed=1):
        session = sagemaker.Session()
        model = HuggingFaceModel(image_uri=get_huggingface_llm_image_uri("huggingface", version="2.3.1"), role=ROLE,
                                 env={"HF_MODEL_ID": "meta-llama/Llama-3.1-8B-Instruct", "SM_NUM_GPUS": "1",
                                      "MAX_INPUT_TOKENS": "16", "MAX_TOTAL_TOKENS": "32", "LLM_SIM_TIME_SCALE": "0.01"},
                                 sagemaker_session=session)
        model.deploy(initial_instance_count=1, instance_type="ml.g5.2xlarge", endpoint_name="hf-llm", wait=False)
        session.sagemaker_client.get_waiter("endpoint_in_service").wait(EndpointName="hf-llm")
        predictor = Predictor("hf-llm", sagemaker_session=session, serializer=JSONSerializer(),
                              deserializer=JSONDeserializer())
        answer = predictor.predict({"inputs": "What is SageMaker?", "parameters": {"max_new_tokens": 5}})
        assert len(answer[0]["generated_text"].split()) == 5
        events = [json.loads(line[len(b"data:"):]) for line in predictor.predict_stream(
            {"inputs": "Hi", "parameters": {"max_new_tokens": 4}, "stream": True}, iterator=LineIterator) if line]
        assert [e["index"] for e in events] == [1, 2, 3, 4] and events[-1]["generated_text"]
        chat = predictor.predict({"messages": [{"role": "user", "content": "hello"}], "max_tokens": 3})
        assert chat["choices"][0]["message"]["role"] == "assistant"
        with pytest.raises(ClientError) as info:  # over MAX_INPUT_TOKENS
            predictor.predict({"inputs": " ".join(["word"] * 20), "parameters": {"max_new_tokens": 2}})
        assert info.value.response["Error"]["Code"] == "ModelError"
        assert "`inputs` must have less than 16 tokens. Given: 20" in info.value.response["OriginalMessage"]
        predictor.delete_endpoint()
        model.delete_model()


def test_sdk_errors_are_sagemakers():
    from botocore.exceptions import ClientError
    from sagemaker.predictor import Predictor

    with sagemaker_emu.running():
        with pytest.raises(ClientError) as info:
            Predictor("missing", sagemaker_session=sagemaker.Session()).predict(b"x")
        assert info.value.response["Error"]["Code"] == "ValidationError"
        assert "Endpoint missing of account 123456789012 not found." in str(info.value)


ROLE_SCRIPT = """
import boto3, sagemaker
session = sagemaker.Session()
print(session.get_caller_identity_arn())
print(sagemaker.get_execution_role())
sts = boto3.client("sts", region_name="us-east-1", endpoint_url="https://sts.us-east-1.amazonaws.com")
print(sts.meta.endpoint_url)
"""


def test_the_execution_role_is_found_offline(tmp_path):
    """Issue 24: get_execution_role() asks STS at the fixed AWS host it builds from botocore's
    endpoint data, which no endpoint variable changes. In running() (this process) and in a
    script run with what `sagemaker-emu env` prints, it gets the emulator's assumed role, whose
    role exists in the emulator's IAM; without those variables the SDK's address is untouched."""
    import subprocess
    import sys

    role = "arn:aws:iam::123456789012:role/SageMakerEmuExecutionRole"
    with sagemaker_emu.running() as emu:
        assert sagemaker.Session().get_caller_identity_arn() == role
        assert sagemaker.get_execution_role() == role
        assert emu.client("iam").get_role(RoleName="SageMakerEmuExecutionRole")["Role"]["Arn"] == role
        assert emu.client("sts").get_caller_identity()["Arn"] == \
            "arn:aws:sts::123456789012:assumed-role/SageMakerEmuExecutionRole/sagemaker-emu"
        exports = subprocess.run([sys.executable, "-m", "sagemaker_emu", "env", "--url", emu.url],
                                 capture_output=True, text=True, check=True).stdout
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_USER_CONFIG", "PYTHONPATH"))}
        env.update(line.removeprefix("export ").split("=", 1) for line in exports.splitlines()
                   if line.startswith("export "))
        script = subprocess.run([sys.executable, "-c", ROLE_SCRIPT], env=env, capture_output=True, text=True,
                                timeout=120)
        assert script.returncode == 0, script.stderr
        printed = [line for line in script.stdout.splitlines() if not line.startswith("sagemaker.config INFO")]
        assert printed == [role, role, emu.url]
    # the same script, the hook still on PYTHONPATH but no emulator variables: AWS's own address
    env = {k: v for k, v in env.items() if not k.startswith("AWS_ENDPOINT_URL")}
    code = "import boto3; print(boto3.client('sts', endpoint_url='https://sts.us-east-1.amazonaws.com').meta.endpoint_url)"
    untouched = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert untouched.returncode == 0, untouched.stderr
    assert untouched.stdout.split() == ["https://sts.us-east-1.amazonaws.com"]


def test_sagemaker_core_resources_drive_inference_components():
    """The resource classes the SDK v3 builds on (`sagemaker-core`, installed with the sdk
    extra): InferenceComponent.create, wait_for_status, Endpoint.invoke with a component.
    Its serializer takes a str body, not bytes, before any request is sent."""
    pytest.importorskip("sagemaker_core")
    from sagemaker_core.main.resources import Endpoint, InferenceComponent
    from sagemaker_core.main.shapes import (
        InferenceComponentComputeResourceRequirements, InferenceComponentRuntimeConfig,
        InferenceComponentSpecification,
    )

    with sagemaker_emu.running(seed=1) as emu:
        sm = emu.client("sagemaker")
        sm.create_model(ModelName="core-model", PrimaryContainer={"Image": "sagemaker-emu/echo"})
        sm.create_endpoint_config(EndpointConfigName="core-config", ExecutionRoleArn=ROLE, ProductionVariants=[{
            "VariantName": "AllTraffic", "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 1}])
        sm.create_endpoint(EndpointName="core-ep", EndpointConfigName="core-config")
        Endpoint.get("core-ep").wait_for_status("InService", poll=1)
        component = InferenceComponent.create(
            inference_component_name="core-ic", endpoint_name="core-ep", variant_name="AllTraffic",
            specification=InferenceComponentSpecification(
                model_name="core-model", compute_resource_requirements=InferenceComponentComputeResourceRequirements(
                    min_memory_required_in_mb=1024, number_of_accelerator_devices_required=1)),
            runtime_config=InferenceComponentRuntimeConfig(copy_count=2))
        component.wait_for_status("InService", poll=1)
        assert (component.runtime_config.desired_copy_count, component.runtime_config.current_copy_count) == (2, 2)
        answer = Endpoint.get("core-ep").invoke(body="hello", content_type="text/plain",
                                                inference_component_name="core-ic")
        assert answer.body.read() == b"hello"
        component.delete()

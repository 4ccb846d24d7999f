"""The SageMaker Python SDK v3 against the emulator (issue 16): examples/sdk_v3_modelbuilder.py,
unchanged, in the environment `make test` builds for v3 (it cannot share one with v2), with
only AWS_ENDPOINT_URL pointing it here. Skipped where that environment is missing."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sagemaker_emu.testing import EmulatorProcess, client, deploy
from tests.integration.installs import wait_for_install

ROOT = Path(__file__).resolve().parents[2]
SDK3_PYTHON = os.environ.get("SAGEMAKER_EMU_SDK3_PYTHON", str(ROOT / ".venv-sdk3" / "bin" / "python"))
SDK3_STATUS = os.environ.get("SAGEMAKER_EMU_SDK3_STATUS")  # written by `make test`'s background install


@pytest.fixture(scope="module", autouse=True)
def sdk3_environment():
    """Under `make test`, wait for the v3 install it started in the background (these tests run
    last, so it is usually done); elsewhere, skip without the environment."""
    wait_for_install(SDK3_STATUS, SDK3_PYTHON, "SDK v3 environment", "make test")


def start_v3(server, code_or_path: str) -> subprocess.Popen:
    """A script (a path) or code run by the v3 SDK's Python with only what `eval "$(sagemaker-emu
    env)"` sets: the endpoint variables, and the SDK config file naming the default bucket."""
    exports = subprocess.run([sys.executable, "-m", "sagemaker_emu", "env", "--url", server.url],
                             capture_output=True, text=True, check=True).stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SAGEMAKER_USER_CONFIG"))}
    env.update(line.removeprefix("export ").split("=", 1) for line in exports.splitlines() if line.startswith("export "))
    assert "SAGEMAKER_USER_CONFIG_OVERRIDE" in env
    command = [SDK3_PYTHON, code_or_path] if code_or_path.endswith(".py") else [SDK3_PYTHON, "-c", code_or_path]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)


def finish(process: subprocess.Popen) -> str:
    """Its output, once it has ended well."""
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    return out


STREAM = '''
import json
from sagemaker.core.resources import Endpoint
endpoint = Endpoint.get("streamed")
try:
    endpoint.invoke_with_response_stream(body=json.dumps({"inputs": "Hi", "stream": True,
                                                          "parameters": {"max_new_tokens": 3}}),
                                         content_type="application/json")
    print("streamed")
except AttributeError as exc:
    print("sagemaker-core failed:", exc)
'''


def test_sagemaker_core_cannot_read_an_event_stream_boto3_reads(server, sm, rt):
    """sagemaker-core 2.x hands boto3's EventStream to a transform that expects a dict. The
    stream itself is AWS's wire format: boto3 reads the same answer, event by event."""
    deploy(sm, "streamed", container={"Image": "sagemaker-emu/llm-sim"})
    assert finish(start_v3(server, STREAM)).strip() == \
        "sagemaker-core failed: 'EventStream' object has no attribute 'get'"
    answer = rt.invoke_endpoint_with_response_stream(EndpointName="streamed", ContentType="application/json", Body=json.dumps(
        {"inputs": "Hi", "stream": True, "parameters": {"max_new_tokens": 3}}))
    assert len([e for e in answer["Body"] if "PayloadPart" in e]) == 3


CORE_COMPONENTS = '''
import json
from sagemaker.core.resources import Endpoint, EndpointConfig, InferenceComponent, Model
from sagemaker.core.shapes import (ContainerDefinition, InferenceComponentComputeResourceRequirements,
                                   InferenceComponentRuntimeConfig, InferenceComponentSpecification,
                                   ProductionVariant, ProductionVariantManagedInstanceScaling)

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecutionRole"
Model.create(model_name="core-llm", execution_role_arn=ROLE,
             primary_container=ContainerDefinition(image="sagemaker-emu/llm-sim"))
EndpointConfig.create(endpoint_config_name="core-ic-config", execution_role_arn=ROLE, production_variants=[
    ProductionVariant(variant_name="AllTraffic", instance_type="ml.g5.12xlarge", initial_instance_count=1,
                      managed_instance_scaling=ProductionVariantManagedInstanceScaling(
                          status="ENABLED", min_instance_count=1, max_instance_count=2))])
endpoint = Endpoint.create(endpoint_name="core-ic-ep", endpoint_config_name="core-ic-config")
endpoint.wait_for_status("InService", poll=1)
component = InferenceComponent.create(
    inference_component_name="core-ic", endpoint_name="core-ic-ep", variant_name="AllTraffic",
    specification=InferenceComponentSpecification(
        model_name="core-llm", compute_resource_requirements=InferenceComponentComputeResourceRequirements(
            min_memory_required_in_mb=1024, number_of_accelerator_devices_required=2)),
    runtime_config=InferenceComponentRuntimeConfig(copy_count=2))
component.wait_for_status("InService", poll=1)
print("copies:", component.runtime_config.desired_copy_count, component.runtime_config.current_copy_count)
answer = endpoint.invoke(body=json.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 3}}),
                         content_type="application/json", inference_component_name="core-ic")
print("answer:", json.loads(answer.body.read())[0]["generated_text"])
component.update_runtime_configs(desired_runtime_config=InferenceComponentRuntimeConfig(copy_count=3))
component.wait_for_status("InService", poll=1)
print("copies:", component.runtime_config.desired_copy_count, component.runtime_config.current_copy_count)
print("instances:", Endpoint.get("core-ic-ep").production_variants[0].current_instance_count)
print("listed:", [c.inference_component_name for c in InferenceComponent.get_all(endpoint_name_equals="core-ic-ep")])
component.delete()
component.wait_for_delete(poll=1)
endpoint.delete()
print("deleted")
'''


def test_sagemaker_core_resources_drive_inference_components(server, sm):
    """Issue 13 through SDK v3's own resource classes: Model, EndpointConfig (no model, managed
    instance scaling), Endpoint, InferenceComponent.create / wait_for_status /
    update_runtime_configs / get_all / delete, and Endpoint.invoke with the component. Two
    2-accelerator copies fill one ml.g5.12xlarge (4 GPUs), so the third brings a second instance."""
    out = finish(start_v3(server, CORE_COMPONENTS))
    assert re.findall(r"^copies: (\d) (\d)", out, re.M) == [("2", "2"), ("3", "3")]
    assert re.search(r"^answer: \S+", out, re.M)
    assert "instances: 2" in out and "listed: ['core-ic']" in out
    assert out.rstrip().endswith("deleted")
    assert not sm.list_inference_components()["InferenceComponents"]


FLOWS = '''
import json
import threading

import boto3
from sagemaker.core.helper.session_helper import Session
from sagemaker.core.inference_config import AsyncInferenceConfig, ResourceRequirements, ServerlessInferenceConfig
from sagemaker.serve.builder.schema_builder import SchemaBuilder
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.serve.utils.types import ModelServer

BUCKET = "sagemaker-us-east-1-123456789012"
BODY = json.dumps({"inputs": "Hello", "parameters": {"max_new_tokens": 4}})


def builder(instance_type):
    b = ModelBuilder(
        sagemaker_session=Session(),
        image_uri="763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04",
        model_server=ModelServer.TGI, role_arn="arn:aws:iam::123456789012:role/SageMakerExecutionRole",
        instance_type=instance_type, env_vars={"HF_MODEL_ID": "meta-llama/Llama-3.1-8B-Instruct"},
        schema_builder=SchemaBuilder({"inputs": "Hi"}, [{"generated_text": "Hello"}]))
    b.build()
    return b


def component():
    # inference_component_name is passed because ModelBuilder 3.27 reads self.inference_component_name
    # before it ever sets it (AttributeError) when none is given.
    endpoint = builder("ml.g5.12xlarge").deploy(
        endpoint_name="v3-ic", initial_instance_count=1, inference_component_name="llama-ic",
        inference_config=ResourceRequirements(requests={"num_accelerators": 1, "memory": 1024, "copies": 2}))
    answer = endpoint.invoke(body=BODY, content_type="application/json", inference_component_name="llama-ic")
    print("component:", json.loads(answer.body.read())[0]["generated_text"])


def serverless():
    endpoint = builder("ml.g5.2xlarge").deploy(
        endpoint_name="v3-serverless", inference_config=ServerlessInferenceConfig(memory_size_in_mb=2048, max_concurrency=2))
    answer = endpoint.invoke(body=BODY, content_type="application/json")
    print("serverless:", json.loads(answer.body.read())[0]["generated_text"])


def asynchronous():
    endpoint = builder("ml.g5.2xlarge").deploy(
        endpoint_name="v3-async", inference_config=AsyncInferenceConfig(output_path=f"s3://{BUCKET}/async-out"))
    boto3.client("s3").put_object(Bucket=BUCKET, Key="in.json", Body=BODY)
    accepted = endpoint.invoke_async(input_location=f"s3://{BUCKET}/in.json", content_type="application/json")
    print("async:", accepted.output_location)


# The three deploys wait at once: the SDK sleeps 30 s before each first look at an endpoint.
threads = [threading.Thread(target=flow) for flow in (component, serverless, asynchronous)]
for t in threads:
    t.start()
for t in threads:
    t.join()
'''


def test_modelbuilder_flows(server, sm):
    """examples/sdk_v3_modelbuilder.py (TGI: build, deploy, invoke, delete), and ModelBuilder.deploy
    with ResourceRequirements, ServerlessInferenceConfig and AsyncInferenceConfig: each makes what
    it makes on AWS, and answers. The two scripts run at once: the SDK sleeps 30 s before each
    first look at an endpoint, whatever the endpoint does."""
    example = start_v3(server, str(ROOT / "examples" / "sdk_v3_modelbuilder.py"))
    flows = start_v3(server, FLOWS)
    out = finish(example)
    name = re.search(r"deployed (v3-tgi-\d+) in \d+ s: InService", out).group(1)
    assert re.search(r"^TGI: \S+", out, re.M) and re.search(r"^Messages API: \S+", out, re.M)
    assert out.rstrip().endswith("deleted")
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig={"Delay": 1})  # Deleting a moment, as on AWS
    assert name not in {e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]}

    out = finish(flows)
    assert re.search(r"component: \S+", out) and re.search(r"serverless: \S+", out)  # (progress panels end lines)
    component = sm.describe_inference_component(InferenceComponentName="llama-ic")
    assert component["RuntimeConfig"] == {"DesiredCopyCount": 2, "CurrentCopyCount": 2}
    assert component["Specification"]["ComputeResourceRequirements"]["NumberOfAcceleratorDevicesRequired"] == 1
    assert "ModelName" not in sm.describe_endpoint_config(EndpointConfigName="v3-ic")["ProductionVariants"][0]
    variant = sm.describe_endpoint_config(EndpointConfigName="v3-serverless")["ProductionVariants"][0]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 2}
    location = re.search(r"async: (s3://\S+)", out).group(1)
    bucket, _, key = location[len("s3://"):].partition("/")
    s3 = client(server.url, "s3")
    deadline = time.monotonic() + 30
    while not s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents"):  # the answer, once written
        assert time.monotonic() < deadline, f"no async output at {location}"
        time.sleep(0.2)
    assert json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())[0]["generated_text"]


ROLE_OFFLINE = '''
from sagemaker.core.helper.session_helper import Session, get_execution_role
from sagemaker.serve.builder.schema_builder import SchemaBuilder
from sagemaker.serve.model_builder import ModelBuilder
from sagemaker.serve.utils.types import ModelServer

session = Session()
print(session.get_caller_identity_arn())
print(get_execution_role())
builder = ModelBuilder(sagemaker_session=session, image_uri="sagemaker-emu/echo", model_server=ModelServer.TGI,
                       instance_type="ml.m5.large",
                       schema_builder=SchemaBuilder({"inputs": "Hi"}, [{"generated_text": "Hello"}]))
print(builder.role_arn)
'''


def test_the_execution_role_is_found_offline(server, sm):
    """Issue 24: get_execution_role() asks STS at a fixed AWS host the endpoint variables do not
    change; with only what `sagemaker-emu env` prints, it gets the emulator's assumed role,
    whose role exists in its IAM, and ModelBuilder takes it when given no role."""
    lines = [line for line in finish(start_v3(server, ROLE_OFFLINE)).splitlines() if line.startswith("arn:")]
    role = "arn:aws:iam::123456789012:role/SageMakerEmuExecutionRole"
    assert lines == [role, role, role]
    assert client(server.url, "iam").get_role(RoleName="SageMakerEmuExecutionRole")["Role"]["Arn"] == role


def test_a_bearer_token_from_generate_token_is_verified_on_the_openai_path(tmp_path):
    """Issue 27: the SDK v3's `sagemaker.core.token_generator.generate_token`, with the
    credentials `sagemaker-emu env` exports, against a server that verifies signatures; the
    OpenAI SDK sends it."""
    import base64

    import openai

    from sagemaker_emu.testing import EmulatorProcess

    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    srv = EmulatorProcess("--auth", "sigv4", "--credentials", str(creds))
    try:
        deploy(client(srv.url), "chat", container={"Image": "sagemaker-emu/llm-sim",
                                                   "Environment": {"LLM_SIM_DECODE_MS_PER_TOKEN": "1"}})
        token = finish(start_v3(srv, "from datetime import timedelta\n"
                                     "from sagemaker.core.token_generator import generate_token\n"
                                     "print(generate_token(region='us-east-1', expiry=timedelta(minutes=5)))")).strip()
        chat = openai.OpenAI(base_url=f"{srv.url}/endpoints/chat/openai/v1", api_key=token, max_retries=0)
        answer = chat.chat.completions.create(model="", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        assert answer.usage.completion_tokens == 2
        url = base64.b64decode(token.removeprefix("sagemaker-api-key-")).decode()
        forged = "sagemaker-api-key-" + base64.b64encode(url.replace("X-Amz-Expires=300", "X-Amz-Expires=600").encode()).decode()
        with pytest.raises(openai.PermissionDeniedError) as refused:
            openai.OpenAI(base_url=chat.base_url, api_key=forged, max_retries=0).chat.completions.create(
                model="", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
        assert refused.value.body["code"] == "InvalidSignatureException"
    finally:
        srv.stop()


BENCHMARK = '''
import json
from sagemaker.serve import start_benchmark
job = start_benchmark("chat", tokenizer="meta-llama/Llama-3.2-1B", concurrency=2, request_count=8,
                      prompt_input_tokens_mean=32, output_tokens_mean=8, output_path="s3://results/v3",
                      role="arn:aws:iam::123456789012:role/SageMakerRole")
result = job.show_result()
print(json.dumps({"status": job.ai_benchmark_job_status, "requests": result.metrics.get("request_count").avg,
                  "throughput": result.metrics.request_throughput.avg, "ttft": result.metrics.time_to_first_token.p50,
                  "tool": result.tool_version}))
'''


def test_start_benchmark_and_show_result_run_unchanged(sdk3_environment):
    """Issue 29: SDK v3's start_benchmark(...).show_result(), with a Hub tokenizer id and no
    network: the job runs AIPerf against the endpoint, show_result reads the archive from S3."""
    from tests.integration.test_sagemaker_ai_benchmarks import AIPERF, FAST, STATUS

    wait_for_install(STATUS, AIPERF, "NVIDIA AIPerf", "make test, or make install-aiperf,")
    srv = EmulatorProcess(env={"SAGEMAKER_EMU_AIPERF": AIPERF})
    try:
        deploy(client(srv.url), "chat", container={"Image": "sagemaker-emu/llm-sim", "Environment": FAST})
        client(srv.url, "s3").create_bucket(Bucket="results")
        answer = json.loads(finish(start_v3(srv, BENCHMARK)).strip().splitlines()[-1])
    finally:
        srv.stop()
    assert answer["status"] == "Completed" and answer["requests"] == 8
    assert answer["throughput"] > 0 and answer["ttft"] > 0 and answer["tool"]

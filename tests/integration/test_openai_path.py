"""SageMaker's OpenAI-compatible path (issue 27), driven with the OpenAI Python SDK: chat
completions whole and streamed on an endpoint and on an inference component, routing by the
messages' text, bearer tokens verified under --auth sigv4, OpenAI's error envelope for every
refusal, and each call counted once as InvokeEndpoint's are."""

import base64
import datetime as dt
import json
import zlib

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from sagemaker_emu.client_env import bearer_token
from sagemaker_emu.testing import EmulatorProcess, client, deploy, variant
from tests.integration.test_fleet import eventually
from tests.integration.test_inference_components import ROLE, component, ic_endpoint

openai = pytest.importorskip("openai")

LLM = {"Image": "sagemaker-emu/llm-sim", "Environment": {
    "LLM_SIM_PREFILL_BASE_MS": "0", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0", "LLM_SIM_DECODE_MS_PER_TOKEN": "1"}}
HELLO = [{"role": "user", "content": "hello"}]


def token(key: str = "testing", secret: str = "testing", region: str = "us-east-1", expires: int = 3600,
          service: str = "sagemaker") -> str:
    """What the SageMaker SDK v3's generate_token makes (sagemaker.core.token_generator), rebuilt
    with botocore (client_env.bearer_token; test_sagemaker_sdk_v3.py uses the SDK's own), or
    scoped to another service."""
    if service == "sagemaker":
        return bearer_token(key, secret, region, expires)
    request = AWSRequest(method="POST", url="https://sagemaker.amazonaws.com/", headers={"host": "sagemaker.amazonaws.com"},
                         params={"Action": "CallWithBearerToken"})
    SigV4QueryAuth(Credentials(key, secret), service, region, expires=expires).add_auth(request)
    return "sagemaker-api-key-" + base64.b64encode((request.url.replace("https://", "") + "&Version=1").encode()).decode()


def chat_client(srv, endpoint: str, component: str | None = None, api_key: str | None = None):
    path = f"/endpoints/{endpoint}" + (f"/inference-components/{component}" if component else "") + "/openai/v1"
    return openai.OpenAI(base_url=srv.url + path, api_key=api_key or token(), max_retries=0)


@pytest.fixture(scope="module")
def chat_server():
    srv = EmulatorProcess()
    sm = client(srv.url)
    deploy(sm, "chat", container=LLM)
    deploy(sm, "echo")
    prefix = variant("main", model="prefix-model", InitialInstanceCount=3, RoutingConfig={
        "RoutingStrategy": "PREFIX_AWARE", "PrefixAwareRoutingConfig": {"PrefixLength": 1024, "ConcurrencyThreshold": 4}})
    deploy(sm, "prefix", variants=[prefix], container=LLM)
    sm.create_model(ModelName="ic-llm", PrimaryContainer=LLM, ExecutionRoleArn=ROLE)
    ic_endpoint(sm, "ics")
    component(sm, "chatter", "ics", "ic-llm", copies=1)
    component(sm, "empty", "ics", "ic-llm", copies=1)
    sm.update_inference_component_runtime_config(InferenceComponentName="empty", DesiredRuntimeConfig={"CopyCount": 0})
    eventually(lambda: sm.describe_inference_component(InferenceComponentName="empty")["RuntimeConfig"][
        "CurrentCopyCount"] == 0, timeout=60)
    yield srv
    srv.stop()


def test_a_chat_completion_whole_and_streamed_on_an_endpoint(chat_server):
    chat = chat_client(chat_server, "chat")
    answer = chat.chat.completions.create(model="", messages=HELLO, max_tokens=5)
    assert answer.object == "chat.completion" and answer.choices[0].message.role == "assistant"
    assert answer.usage.completion_tokens == 5 and answer.usage.prompt_tokens > 0
    chunks = list(chat.chat.completions.create(model="", messages=HELLO, max_tokens=4, stream=True))
    assert [c.object for c in chunks] == ["chat.completion.chunk"] * 4
    assert chunks[-1].choices[0].finish_reason == "length"
    counted = list(chat.chat.completions.create(model="", messages=HELLO, max_tokens=4, stream=True,
                                                stream_options={"include_usage": True}))
    assert counted[-1].choices == [] and counted[-1].usage.completion_tokens == 4


@pytest.mark.parametrize("image", [
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/sglang:0.5.10-gpu-py312-cu130-ubuntu22.04-sagemaker",
    "public.ecr.aws/deep-learning-containers/sglang:server-sagemaker-cuda",
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/vllm:0.11-gpu-py312-sagemaker",
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04",
    "763104351884.dkr.ecr.us-east-1.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128",
])
def test_every_llm_image_family_serves_the_path(chat_server, image):
    """AWS's LLM serving images whose real servers have /v1/chat/completions (SGLang, vLLM,
    TGI's Messages API, LMI's OpenAI schema) run as llm-sim speaking their API, and answer."""
    name = f"img-{zlib.crc32(image.encode())}"
    deploy(client(chat_server.url), name, container={"Image": image})
    answer = chat_client(chat_server, name).chat.completions.create(model="", messages=HELLO, max_tokens=2)
    assert answer.usage.completion_tokens == 2


def test_a_chat_completion_whole_and_streamed_on_a_component(chat_server):
    chat = chat_client(chat_server, "ics", "chatter")
    assert chat.chat.completions.create(model="", messages=HELLO, max_tokens=3).usage.completion_tokens == 3
    streamed = "".join(c.choices[0].delta.content or "" for c in chat.chat.completions.create(
        model="", messages=HELLO, max_tokens=3, stream=True))
    assert len(streamed.split()) == 3


def test_prefix_aware_routing_reads_the_messages(chat_server):
    """Two conversations sharing a long system prompt (PrefixLength 1024 characters of the
    messages' text) go to one instance; the bodies differ within their first bytes (`max_tokens`
    and the question come first), so a byte prefix of the body would not do it."""
    system = {"role": "system", "content": "You answer questions about the ACME company. " * 40}
    chat = chat_client(chat_server, "prefix")
    for question in ("What does ACME sell?", "Where is ACME?", "Who founded ACME?"):
        chat.chat.completions.create(model="", max_tokens=1, messages=[system, {"role": "user", "content": question}])
    served = sorted(i["served"] for v in chat_server.endpoint_view("prefix")["variants"] for i in v["instances"])
    assert served == [0, 0, 3]


@pytest.mark.parametrize("case", ["unknown endpoint", "unknown component", "no copies", "a container's own 4xx",
                                  "container without chat", "body too large"])
def test_refusals_answer_in_openais_envelope(chat_server, case):
    expected = {
        "unknown endpoint": (lambda: chat_client(chat_server, "nope"), openai.BadRequestError, 400,
                             "Endpoint nope of account 123456789012 not found."),
        "unknown component": (lambda: chat_client(chat_server, "ics", "nope"), openai.BadRequestError, 400,
                              "Inference component nope is not hosted on endpoint ics."),
        "no copies": (lambda: chat_client(chat_server, "ics", "empty"), openai.BadRequestError, 400,
                      "Inference Component has no capacity to process this request."),
        "a container's own 4xx": (lambda: chat_client(chat_server, "chat"), openai.UnprocessableEntityError, 422,
                                 "Received client error (422) from primary with message"),
        "container without chat": (lambda: chat_client(chat_server, "echo"), openai.NotFoundError, 404,
                                   "does not serve POST /v1/chat/completions"),
        "body too large": (lambda: chat_client(chat_server, "chat"), openai.BadRequestError, 400,
                           "Member must have length less than or equal to 6291456"),
    }
    make, exception, status, text = expected[case]
    body = {"messages": HELLO}
    if case == "a container's own 4xx":
        body = {"messages": "not a list"}
    if case == "body too large":
        body = {"messages": [{"role": "user", "content": "x" * (7 * 1024 * 1024)}]}
    with pytest.raises(exception) as refused:
        make().chat.completions.create(model="", **body)
    assert refused.value.status_code == status and text in refused.value.message
    envelope = refused.value.body
    assert set(envelope) >= {"message", "type", "code"}, envelope  # the SDK hands over the "error" member


def test_an_injected_throttle_is_a_rate_limit_error(chat_server):
    chat_server.post("/_emu/faults", json.dumps({"kind": "throttle", "endpoint": "chat", "times": 1}).encode(),
                     {"Content-Type": "application/json"})
    with pytest.raises(openai.RateLimitError) as refused:
        chat_client(chat_server, "chat").chat.completions.create(model="", messages=HELLO, max_tokens=1)
    assert refused.value.body["code"] == "ThrottlingException"


def test_each_call_is_counted_once_in_cloudwatch_as_invoke_endpoints_are(chat_server):
    cw = client(chat_server.url, "cloudwatch")
    dims = [{"Name": "EndpointName", "Value": "chat"}, {"Name": "VariantName", "Value": "AllTraffic"}]

    def invocations() -> float:
        now = dt.datetime.now(dt.timezone.utc)
        points = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=dims,
                                          StartTime=now - dt.timedelta(hours=1), EndTime=now + dt.timedelta(minutes=1),
                                          Period=3600, Statistics=["Sum"])["Datapoints"]
        return sum(p["Sum"] for p in points)

    before = invocations()
    chat = chat_client(chat_server, "chat")
    chat.chat.completions.create(model="", messages=HELLO, max_tokens=1)
    list(chat.chat.completions.create(model="", messages=HELLO, max_tokens=1, stream=True))
    client(chat_server.url, "sagemaker-runtime").invoke_endpoint(
        EndpointName="chat", Body=json.dumps({"inputs": "hi", "parameters": {"max_new_tokens": 1}}))
    eventually(lambda: invocations() >= before + 3)
    assert invocations() == before + 3


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    creds = tmp_path_factory.mktemp("creds") / "credentials"
    creds.write_text("[default]\naws_access_key_id = AKIDEMU\naws_secret_access_key = s3cret\n")
    srv = EmulatorProcess("--auth", "sigv4", "--credentials", str(creds))
    import boto3

    sm = boto3.client("sagemaker", endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id="AKIDEMU",
                      aws_secret_access_key="s3cret")
    deploy(sm, "chat", container=LLM)
    yield srv
    srv.stop()


@pytest.mark.parametrize("case, key, secret, region, expires, service, code", [
    ("the configured key", "AKIDEMU", "s3cret", "us-east-1", 3600, "sagemaker", None),
    ("another region's scope", "AKIDEMU", "s3cret", "eu-west-1", 3600, "sagemaker", "ValidationError"),
    ("an unknown key", "AKIDOTHER", "s3cret", "us-east-1", 3600, "sagemaker", "UnrecognizedClientException"),
    ("a wrong secret", "AKIDEMU", "wrong", "us-east-1", 3600, "sagemaker", "InvalidSignatureException"),
    ("another service's scope", "AKIDEMU", "s3cret", "us-east-1", 3600, "bedrock", "InvalidSignatureException"),
])
def test_bearer_tokens_are_verified_under_auth_sigv4(signed, case, key, secret, region, expires, service, code):
    chat = chat_client(signed, "chat", api_key=token(key, secret, region, expires, service))
    if code is None:
        assert chat.chat.completions.create(model="", messages=HELLO, max_tokens=1).usage.completion_tokens == 1
        return
    with pytest.raises(openai.APIStatusError) as refused:
        chat.chat.completions.create(model="", messages=HELLO, max_tokens=1)
    assert refused.value.body["code"] == code, refused.value.body


@pytest.mark.parametrize("api_key, code", [
    ("sagemaker-api-key-not base64!", "IncompleteSignatureException"),
    ("bedrock-api-key-" + base64.b64encode(b"bedrock.amazonaws.com/?Action=CallWithBearerToken").decode(),
     "IncompleteSignatureException"),
])
def test_malformed_and_foreign_tokens_are_refused(signed, api_key, code):
    with pytest.raises(openai.PermissionDeniedError) as refused:
        chat_client(signed, "chat", api_key=api_key).chat.completions.create(model="", messages=HELLO, max_tokens=1)
    assert refused.value.body["code"] == code


def test_an_expired_token_is_refused(signed):
    """A token signed an hour ago for a minute (botocore dates the signature now, so the clock
    of the signer is moved back)."""
    from unittest import mock

    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=past):
        expired = token("AKIDEMU", "s3cret", expires=60)
    with pytest.raises(openai.PermissionDeniedError) as refused:
        chat_client(signed, "chat", api_key=expired).chat.completions.create(model="", messages=HELLO, max_tokens=1)
    assert refused.value.body == {"message": "Request has expired", "type": "authentication_error",
                                  "code": "AccessDenied"}


def test_env_prints_the_openai_base_url_and_a_token(chat_server, monkeypatch):
    """`sagemaker-emu env --openai NAME`: OPENAI_BASE_URL and OPENAI_API_KEY, which the OpenAI
    SDK reads with no argument."""
    import shlex
    import subprocess
    import sys

    printed = subprocess.run([sys.executable, "-m", "sagemaker_emu", "env", "--url", chat_server.url, "--openai", "ics",
                              "--component", "chatter"], capture_output=True, text=True, check=True).stdout
    exports = dict(shlex.split(line[len("export "):])[0].split("=", 1) for line in printed.splitlines()
                   if line.startswith("export OPENAI_"))
    assert exports["OPENAI_BASE_URL"] == f"{chat_server.url}/endpoints/ics/inference-components/chatter/openai/v1"
    for name, value in exports.items():
        monkeypatch.setenv(name, value)
    answer = openai.OpenAI(max_retries=0).chat.completions.create(model="", messages=HELLO, max_tokens=2)
    assert answer.usage.completion_tokens == 2


def test_sagemakers_session_header_is_honoured(chat_server):
    """X-Amzn-SageMaker-Session-Id routes as on InvokeEndpoint: a session that is not open is
    refused in SageMaker's words."""
    chat = chat_client(chat_server, "chat")
    with pytest.raises(openai.BadRequestError) as refused:
        chat.chat.completions.create(model="", messages=HELLO, max_tokens=1,
                                     extra_headers={"X-Amzn-SageMaker-Session-Id": "nope"})
    assert refused.value.body["message"] == "Session nope is not an open session of endpoint chat."


def test_serverless_cold_start_and_data_capture_work_as_on_invoke_endpoint(chat_server):
    """The OpenAI-compatible path runs InvokeEndpoint's stages: a serverless variant starts on
    the first call, and a capturing endpoint writes the chat body and answer as capture records."""
    from tests.integration.test_data_capture import capture_config, captured

    sm, s3 = client(chat_server.url), client(chat_server.url, "s3")
    sm.create_model(ModelName="sls-chat", PrimaryContainer=LLM)
    sm.create_endpoint_config(EndpointConfigName="sls-chat", ProductionVariants=[{
        "VariantName": "v", "ModelName": "sls-chat", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}])
    sm.create_endpoint(EndpointName="sls-chat", EndpointConfigName="sls-chat")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="sls-chat", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert chat_server.endpoint_view("sls-chat")["variants"][0]["instances"] == []  # scaled to zero
    assert chat_client(chat_server, "sls-chat").chat.completions.create(
        model="", messages=HELLO, max_tokens=1).usage.completion_tokens == 1

    s3.create_bucket(Bucket="captures")
    sm.create_endpoint_config(EndpointConfigName="cap-chat", ProductionVariants=[variant(model="chat-model")],
                              DataCaptureConfig=capture_config())
    sm.create_endpoint(EndpointName="cap-chat", EndpointConfigName="cap-chat")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="cap-chat", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    chat_client(chat_server, "cap-chat").chat.completions.create(model="", messages=HELLO, max_tokens=1)
    _, records = captured(s3, "cap-chat", 1)
    [record] = records
    assert json.loads(record["captureData"]["endpointInput"]["data"])["messages"] == HELLO
    assert json.loads(record["captureData"]["endpointOutput"]["data"])["object"] == "chat.completion"

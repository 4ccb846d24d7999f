"""AWS's own serving images run unchanged (issue 14): the TGI and LMI images answer in their
servers' formats, the Messages API included, and stream; a framework image runs the model's
inference.py and says which package a model lacks."""

import io
import json
import tarfile
from pathlib import Path

import pytest
from botocore.exceptions import WaiterError

from sagemaker_emu.testing import client, deploy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TGI = "763104351884.dkr.ecr.us-east-1.amazonaws.com/huggingface-pytorch-tgi-inference:2.4.0-tgi2.3.1-gpu-py311-cu124-ubuntu22.04"
LMI = "763104351884.dkr.ecr.us-west-2.amazonaws.com/djl-inference:0.33.0-lmi15.0.0-cu128"
VLLM = "763104351884.dkr.ecr.us-east-1.amazonaws.com/vllm:0.11.2-gpu-py312-cu129-ubuntu22.04-sagemaker"
SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
FAST = {"LLM_SIM_TIME_SCALE": "0.01", "HF_MODEL_ID": "meta-llama/Llama-3.1-8B-Instruct"}
CHAT = {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello?"}],
        "max_tokens": 5}


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def streamed(rt, endpoint: str, body: dict) -> bytes:
    answer = rt.invoke_endpoint_with_response_stream(EndpointName=endpoint, Body=json.dumps(body),
                                                     ContentType="application/json")
    return b"".join(event["PayloadPart"]["Bytes"] for event in answer["Body"] if "PayloadPart" in event)


def sse(data: bytes) -> list:
    events = [line[len(b"data:"):].strip() for line in data.split(b"\n") if line.startswith(b"data:")]
    return [e.decode() if e == b"[DONE]" else json.loads(e) for e in events]


@pytest.fixture
def tgi(server, sm):
    """A TGI endpoint deployed as SDK v3's ModelBuilder does: model data uploaded to S3."""
    s3 = client(server.url, "s3")
    s3.create_bucket(Bucket="sagemaker-us-east-1-123456789012")
    s3.put_object(Bucket="sagemaker-us-east-1-123456789012", Key="llama/model.tar.gz",
                  Body=tarball({"config.json": b"{}", "serving.properties": b""}))
    deploy(sm, "tgi", container={"Image": TGI, "Environment": FAST,
                                 "ModelDataUrl": "s3://sagemaker-us-east-1-123456789012/llama/model.tar.gz"})
    return "tgi"


def test_tgi_image_answers_tgi_and_messages_api(tgi, rt):
    answer = rt.invoke_endpoint(EndpointName=tgi, Body=json.dumps({"inputs": "Hi", "parameters": {"max_new_tokens": 4}}),
                                ContentType="application/json")
    generated = json.loads(answer["Body"].read())
    assert isinstance(generated, list) and len(generated[0]["generated_text"].split()) == 4
    answer = rt.invoke_endpoint(EndpointName=tgi, Body=json.dumps(CHAT), ContentType="application/json")
    chat = json.loads(answer["Body"].read())
    assert chat["object"] == "chat.completion" and answer["ContentType"] == "application/json"
    assert chat["choices"][0]["message"]["role"] == "assistant" and chat["choices"][0]["finish_reason"] == "length"
    assert len(chat["choices"][0]["message"]["content"].split()) == 5
    assert chat["usage"]["completion_tokens"] == 5 and chat["usage"]["prompt_tokens"] > 0


def test_tgi_image_streams_tgi_events_and_chat_chunks(tgi, rt):
    tokens = sse(streamed(rt, tgi, {"inputs": "Hi", "parameters": {"max_new_tokens": 3}, "stream": True}))
    assert [t["index"] for t in tokens] == [1, 2, 3]
    assert tokens[-1]["generated_text"] == "".join(t["token"]["text"] for t in tokens)
    chunks = sse(streamed(rt, tgi, {**CHAT, "stream": True}))
    assert chunks[-1] == "[DONE]" and len(chunks) == 6
    assert {c["object"] for c in chunks[:-1]} == {"chat.completion.chunk"}
    assert [c["choices"][0]["finish_reason"] for c in chunks[:-1]] == [None] * 4 + ["length"]


def test_tgi_image_enforces_its_launcher_limits(sm, rt):
    """A production TGI configuration's limits hold here too: a prompt too long for MAX_INPUT_TOKENS
    is TGI's 422, which SageMaker hands back as a ModelError."""
    deploy(sm, "tgi-limits", container={"Image": TGI, "Environment": {
        **FAST, "MAX_INPUT_TOKENS": "8", "MAX_TOTAL_TOKENS": "16"}})
    with pytest.raises(rt.exceptions.ModelError) as info:
        rt.invoke_endpoint(EndpointName="tgi-limits", ContentType="application/json",
                           Body=json.dumps({"inputs": "one two three four five six seven eight nine",
                                            "parameters": {"max_new_tokens": 2}}))
    assert info.value.response["OriginalStatusCode"] == 422
    assert "`inputs` must have less than 8 tokens. Given: 9" in info.value.response["OriginalMessage"]
    ok = rt.invoke_endpoint(EndpointName="tgi-limits", ContentType="application/json",
                            Body=json.dumps({"inputs": "one two", "parameters": {"max_new_tokens": 14}}))
    assert len(json.loads(ok["Body"].read())[0]["generated_text"].split()) == 14


def test_lmi_image_answers_in_lmi_format(sm, rt):
    deploy(sm, "lmi", container={"Image": LMI, "Environment": FAST})
    answer = rt.invoke_endpoint(EndpointName="lmi", Body=json.dumps({"inputs": "Hi", "parameters": {"max_new_tokens": 2}}),
                                ContentType="application/json")
    assert len(json.loads(answer["Body"].read())["generated_text"].split()) == 2  # an object, not TGI's list
    lines = [json.loads(line) for line in streamed(rt, "lmi", {"inputs": "Hi", "parameters": {"max_new_tokens": 3},
                                                              "stream": True}).splitlines()]
    assert [line["token"]["id"] for line in lines] == [1, 2, 3] and lines[-1]["generated_text"]
    chat = json.loads(rt.invoke_endpoint(EndpointName="lmi", Body=json.dumps(CHAT),
                                         ContentType="application/json")["Body"].read())
    assert chat["object"] == "chat.completion"


def test_vllm_image_answers_openai_completions_and_chat(sm, rt):
    deploy(sm, "vllm", container={"Image": VLLM, "Environment": {
        "LLM_SIM_TIME_SCALE": "0.01", "SM_VLLM_MODEL": "meta-llama/Llama-3.1-8B-Instruct", "SM_VLLM_MAX_MODEL_LEN": "64"}})
    answer = json.loads(rt.invoke_endpoint(EndpointName="vllm", ContentType="application/json",
                                           Body=json.dumps({"prompt": "Once upon a time", "max_tokens": 3}))["Body"].read())
    assert answer["object"] == "text_completion" and answer["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert len(answer["choices"][0]["text"].split()) == 3
    chunks = sse(streamed(rt, "vllm", {**CHAT, "stream": True}))
    assert chunks[-1] == "[DONE]" and {c["object"] for c in chunks[:-1]} == {"chat.completion.chunk"}
    with pytest.raises(rt.exceptions.ModelError) as info:  # TGI's format is not vLLM's
        rt.invoke_endpoint(EndpointName="vllm", ContentType="application/json", Body=json.dumps({"inputs": "Hi"}))
    assert info.value.response["OriginalStatusCode"] == 400
    assert "Cannot find suitable handler for request" in info.value.response["OriginalMessage"]


def lmi_model_data(server, key: str, properties: bytes) -> str:
    """An LMI model archive as the SDK's own LMI test uploads it: serving.properties in a model folder."""
    s3 = client(server.url, "s3")
    s3.create_bucket(Bucket="lmi-models")
    s3.put_object(Bucket="lmi-models", Key=key, Body=tarball({"mymodel-7B/serving.properties": properties}))
    return f"s3://lmi-models/{key}"


def test_lmi_takes_its_options_from_serving_properties(server, sm, rt):
    url = lmi_model_data(server, "streams.tar.gz", b"engine=MPI\noption.rolling_batch=lmi-dist\n"
                                                   b"option.max_rolling_batch_size=2\noption.enable_streaming=true\n")
    deploy(sm, "lmi-streams", container={"Image": LMI, "Environment": FAST, "ModelDataUrl": url})
    lines = streamed(rt, "lmi-streams", {"inputs": "what does AWS stand for?", "parameters": {"max_new_tokens": 4}})
    outputs = [json.loads(line)["outputs"] for line in lines.splitlines()]  # streamed without "stream": true
    assert len(outputs) == 4 and all(len(o) == 1 and isinstance(o[0], str) for o in outputs)
    url = lmi_model_data(server, "bad.tar.gz", b"option.max_rolling_batch_size=0\n")
    deploy(sm, "lmi-bad", container={"Image": LMI, "Environment": FAST, "ModelDataUrl": url}, wait=False)
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="lmi-bad", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert "LMI option max_rolling_batch_size='0'" in sm.describe_endpoint(EndpointName="lmi-bad")["FailureReason"]


def test_framework_image_names_the_package_a_model_lacks(sm):
    import importlib.util

    if importlib.util.find_spec("sklearn") is not None:  # docs/configuration.md tells users to install it
        pytest.skip("scikit-learn is installed where the workers run, so the model loads: nothing is missing")
    deploy(sm, "sk", container={"Image": SKLEARN, "ModelDataUrl": (FIXTURES / "sklearn_model").as_uri()}, wait=False)
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="sk", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    reason = sm.describe_endpoint(EndpointName="sk")["FailureReason"]
    assert "The model imports sklearn" in reason and "pip install scikit-learn" in reason

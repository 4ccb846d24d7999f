"""The SageMaker Python SDK v3 against the emulator (issue 16): examples/sdk_v3_modelbuilder.py,
unchanged, in the environment `make test` builds for v3 (it cannot share one with v2), with
only AWS_ENDPOINT_URL pointing it here. Skipped where that environment is missing."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from sagemaker_emu.testing import client, deploy

ROOT = Path(__file__).resolve().parents[2]
SDK3_PYTHON = os.environ.get("SAGEMAKER_EMU_SDK3_PYTHON", str(ROOT / ".venv-sdk3" / "bin" / "python"))
pytestmark = pytest.mark.skipif(not Path(SDK3_PYTHON).exists(), reason=f"no SDK v3 environment at {SDK3_PYTHON} "
                                "(make test builds it)")


def run_v3(server, code_or_path: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=server.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1")
    command = [SDK3_PYTHON, code_or_path, *args] if code_or_path.endswith(".py") else [SDK3_PYTHON, "-c", code_or_path]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, cwd=ROOT)


def test_modelbuilder_tgi_builds_deploys_invokes_and_deletes(server):
    result = run_v3(server, str(ROOT / "examples" / "sdk_v3_modelbuilder.py"))
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert re.search(r"deployed v3-tgi-\d+ in \d+ s: InService", out)
    assert re.search(r"^TGI: \S+", out, re.M) and re.search(r"^Messages API: \S+", out, re.M)
    assert out.rstrip().endswith("deleted")
    assert client(server.url).list_endpoints()["Endpoints"] == []


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
    result = run_v3(server, STREAM)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "sagemaker-core failed: 'EventStream' object has no attribute 'get'"
    answer = rt.invoke_endpoint_with_response_stream(EndpointName="streamed", ContentType="application/json", Body=json.dumps(
        {"inputs": "Hi", "stream": True, "parameters": {"max_new_tokens": 3}}))
    assert len([e for e in answer["Body"] if "PayloadPart" in e]) == 3

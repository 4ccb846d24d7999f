"""Every example runs unchanged against the server, so none can rot."""

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(server, name: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["AWS_ENDPOINT_URL"] = server.url  # the one variable a user sets (README)
    return subprocess.run([sys.executable, str(EXAMPLES / name)], env=env, capture_output=True, text=True, timeout=120)


def test_deploy_example(server):
    result = run_example(server, "deploy.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["InService", '{"hello": "world"} from AllTraffic']


def test_stream_tokens_example(server):
    result = run_example(server, "stream_tokens.py")
    assert result.returncode == 0, result.stderr
    text, summary = result.stdout.rsplit("\n\n", 1)
    assert len(text.split()) == 40  # every token was printed
    assert summary.startswith("first token after ") and "served by AllTraffic" in summary


def test_deploy_and_invoke_example(server):
    result = run_example(server, "deploy_and_invoke.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    stable, canary = (int(x.split()[-1]) for x in lines[0].split(":", 1)[1].split(","))
    assert stable + canary == 200 and canary < stable  # 9:1 by weight
    assert lines[1] == "TargetVariant=Canary was served by Canary"
    assert lines[2] == "after promoting the canary: Canary"


def test_routing_strategies_example(server):
    result = run_example(server, "routing_strategies.py")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["strategy", "requests", "p50", "ms", "p90", "ms", "p99", "ms"]
    assert [r.split()[0] for r in rows] == ["RANDOM", "LEAST_OUTSTANDING_REQUESTS"]


def test_inference_script_example(server):
    result = run_example(server, "inference_script/deploy.py")
    assert result.returncode == 0, result.stderr
    predictions = result.stdout.split(":", 1)[1].strip()
    low, high = json.loads(predictions)
    assert 200 < low < high < 450  # 60 m2 / 2 rooms is cheaper than 100 m2 / 4 rooms


def test_routing_demo_notebook_runs_offline(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(EXAMPLES / "notebooks" / "routing_demo.ipynb", as_version=4)
    env_backup = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for key in env_backup:  # the notebook must not depend on the caller's AWS settings
        del os.environ[key]
    try:
        NotebookClient(notebook, timeout=180, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.update(env_backup)
    outputs = ["".join(o.get("text", "") for o in cell.get("outputs", [])) for cell in notebook.cells
               if cell.cell_type == "code"]
    assert "InService" in outputs[1]
    assert "RANDOM" in outputs[2] and "LEAST_OUTSTANDING_REQUESTS" in outputs[2]
    assert outputs[3].startswith("plotted ") and (tmp_path / "routing_demo.png").stat().st_size > 10_000
    assert outputs[4].strip() == "done"


def test_sagemaker_sdk_example(server):
    import pytest

    pytest.importorskip("sagemaker")
    result = run_example(server, "sagemaker_sdk.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("8 tokens: ")


def test_inference_components_example(server):
    result = run_example(server, "inference_components.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "chat: InService, 1 copies", "echo: InService, 2 copies", "chat answered: True", "echo answered: ping",
        "echo copies: 4 on 2 instances", "echo copies: 1 on 1 instances", "deleted"]


def test_async_from_s3_example(server):
    result = run_example(server, "async_from_s3.py")
    assert result.returncode == 0, result.stderr
    accepted, notified, answer = result.stdout.splitlines()
    assert accepted.startswith("accepted; the answer will be at s3://example-")
    assert notified == "notified: Completed True"
    assert json.loads(answer.split(":", 1)[1]) == {"predictions": [3, 5, 7]}


def test_openai_chat_example(server):
    result = run_example(server, "openai_chat.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":", 1)[0] for line in lines[:4]] == [
        "endpoint, whole", "endpoint, streamed", "component, whole", "component, streamed"]
    assert lines[0].endswith("(8 tokens)") and all(len(line.split(": ", 1)[1].strip("'").split()) == 8
                                                     for line in lines[1:4:2])
    assert lines[4].startswith("LangChain: '") and len(lines[4].split()) == 9  # 8 tokens through ChatOpenAI


def test_inference_router_example(server):
    result = run_example(server, "inference_router.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['{"hello": "router"} from us-east-1 (local-preferred)',
                                          '{"hello": "router"} from us-west-2 (only-healthy)']

"""Every example runs unchanged against the server, so none can rot."""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(server, name: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL_SAGEMAKER=server.url, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=server.url)
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

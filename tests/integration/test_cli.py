import subprocess
import sys

from tests.helpers import deploy, variant


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "sagemaker_emu", *args], capture_output=True, text=True, timeout=60)


def test_logs_prints_each_instance(server, sm):
    deploy(sm, "ep1", variants=[variant(InitialInstanceCount=2)])
    result = run_cli("logs", "ep1", "--url", server.url)
    assert result.returncode == 0, result.stderr
    assert "==> AllTraffic-1 <==" in result.stdout and "==> AllTraffic-2 <==" in result.stdout
    assert result.stdout.count("serving echo on 127.0.0.1") == 2


def test_logs_of_unknown_endpoint(server):
    result = run_cli("logs", "ghost", "--url", server.url)
    assert result.returncode == 1
    assert "No endpoint named ghost" in result.stderr


def test_paths_that_are_not_calls_answer_json(server):
    status, headers, _ = server.post("/nothing-here", method="GET")  # every POST path is a JSON 1.1 call
    assert status == 405 and headers["Content-Type"] == "application/json"
    status, headers, _ = server.post("/_emu/endpoints/ghost", method="GET")
    assert status == 404 and headers["Content-Type"] == "application/json"


def test_bad_port_is_refused():
    result = run_cli("serve", "--port", "70000")
    assert result.returncode == 2 and "--port must be between 0 and 65535" in result.stderr

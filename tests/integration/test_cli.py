import importlib.util
import subprocess
import sys

import pytest

from sagemaker_emu.testing import deploy, variant


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
    status, headers, _ = server.post("/_emu/nothing-here", method="GET")  # before: 405
    assert status == 404 and headers["Content-Type"] == "application/json"


def test_bad_port_is_refused():
    result = run_cli("serve", "--port", "70000")
    assert result.returncode == 2 and "--port must be between 0 and 65535" in result.stderr


def test_logs_of_a_failed_endpoint_say_why_and_exit_1(server, sm):
    sm.create_model(ModelName="bad", PrimaryContainer={"Image": "my-registry/unknown:1"})
    sm.create_endpoint_config(EndpointConfigName="bad", ProductionVariants=[variant(model="bad")])
    sm.create_endpoint(EndpointName="bad", EndpointConfigName="bad")
    try:
        sm.get_waiter("endpoint_in_service").wait(EndpointName="bad", WaiterConfig={"MaxAttempts": 1})
    except Exception:
        pass
    result = run_cli("logs", "bad", "--url", server.url)
    assert result.returncode == 1  # before: nothing printed, exit 0
    assert "endpoint bad is Failed: sagemaker-emu cannot run image 'my-registry/unknown:1'" in result.stderr
    assert "WARNING sagemaker_emu.lifecycle endpoint bad Failed: sagemaker-emu cannot run image" in server.logs()


def test_server_log_lines_carry_the_wire_codes(server, sm, rt):
    server.call("DescribeEndpoint", {"EndpointName": "nope"})
    server.call("CreateTrainingJob", {})
    server.post("/endpoints/nope/invocations", b"x")
    logs = server.logs()
    assert "DescribeEndpoint nope 400 ValidationException" in logs
    assert "CreateTrainingJob - 501 NotImplementedException" in logs  # before: "- - 501"
    assert "InvokeEndpoint nope 400 ValidationError" in logs  # before: the internal name InvalidInput


def test_bench_help_lists_the_benchmarks():
    from sagemaker_emu.cli import BENCHES

    for result in (run_cli("bench", "--help"), run_cli("--help")):
        assert result.returncode == 0
        assert all(name in result.stdout for name in BENCHES), result.stdout  # before: 6 of 10 at the top


def test_start_up_failures_a_user_can_cause_are_one_line(tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli("serve", "--port", str(port))
    (tmp_path / "file").write_text("")
    cases = [(busy, f"sagemaker-emu: port {port} on 127.0.0.1 is in use"),
             (run_cli("serve", "--port", "0", "--state-dir", str(tmp_path / "file" / "state")),
              f"sagemaker-emu: --state-dir {tmp_path / 'file' / 'state'} cannot be written: Not a directory"),
             (run_cli("serve", "--port", "0", "--bootstrap", str(tmp_path / "missing.yaml")),
              f"sagemaker-emu: {tmp_path / 'missing.yaml'}: cannot read it: No such file or directory")]
    for result, line in cases:
        assert result.returncode == 1
        assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(line), result.stderr
        assert "listening on" not in result.stdout


def test_a_malformed_bootstrap_file_is_a_one_line_error(tmp_path):
    bad = tmp_path / "stack.yaml"
    bad.write_text("models: [\n  - {ModelName: a\n")
    result = run_cli("serve", "--port", "0", "--bootstrap", str(bad))
    assert result.returncode == 1
    assert "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def test_a_failed_invocation_names_its_instance_in_the_log(server, sm, rt):
    import pytest
    from botocore.exceptions import ClientError

    deploy(sm, "ep1")
    (instance,) = server.endpoint_view("ep1")["variants"][0]["instances"]
    server.post("/_emu/faults", b'{"kind": "model_error", "endpoint": "ep1", "times": 1}',
                {"Content-Type": "application/json"})
    with pytest.raises(ClientError):
        rt.invoke_endpoint(EndpointName="ep1", Body=b"x", InferenceId="call-7")
    assert (f"InvokeEndpoint ep1 424 ModelError instance={instance['id']} pid={instance['pid']} "
            "inference_id=call-7") in server.logs()


def test_fleet_ray_without_ray_says_how_to_install_it():
    if importlib.util.find_spec("ray") is not None:
        pytest.skip("Ray is installed in this environment")
    result = run_cli("serve", "--port", "0", "--fleet", "ray")
    assert result.returncode == 2
    assert result.stderr.strip() == "sagemaker-emu: --fleet ray needs Ray: pip install 'sagemaker-emu[ray]'"

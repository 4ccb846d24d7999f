"""The ways users test against the emulator: in-process server, env vars, pytest plugin, CLI."""

import json
import os
import subprocess
import sys

import boto3

import sagemaker_emu
from sagemaker_emu.testing import EmulatorServer, deploy, variant
from tests.integration.test_fleet import alive, eventually


def test_in_process_server_serves_and_stops_its_workers():
    with EmulatorServer(port=0, seed=3) as emu:
        assert emu.url.startswith("http://127.0.0.1:")
        sm, rt = emu.client("sagemaker"), emu.client("sagemaker-runtime")
        deploy(sm, "ep1", variants=[variant(InitialInstanceCount=2)])
        assert rt.invoke_endpoint(EndpointName="ep1", Body=b"hi")["Body"].read() == b"hi"
        view = sm.describe_endpoint(EndpointName="ep1")
        assert view["EndpointStatus"] == "InService"
        pids = [i.pid for _, fleet in emu._server.emulator.backends.fleets() for i in fleet.all_instances()]
        assert len(pids) == 2 and all(alive(p) for p in pids)
    assert not any(alive(p) for p in pids)


def test_a_call_cut_off_by_the_servers_stop_is_not_logged_as_an_error(caplog):
    """A call whose caller is gone (here: cut off by the server's stop) was answered 499 with a
    `Connection` header, which WSGI forbids: waitress logged an error with a traceback for every
    such call, which a notebook showed as its last cell's output (CI saw it)."""
    import logging
    import threading
    import urllib.request

    from botocore.exceptions import BotoCoreError, ClientError

    emu = EmulatorServer(port=0).start()
    try:
        sm, rt = emu.client("sagemaker"), emu.client("sagemaker-runtime")
        deploy(sm, "slow", environment={"ECHO_LATENCY_MS": "3000"})

        def call() -> None:
            try:
                rt.invoke_endpoint(EndpointName="slow", Body=b"x")
            except (BotoCoreError, ClientError):
                pass  # cut off by the stop, as expected

        caller = threading.Thread(target=call)
        caller.start()
        def in_flight() -> int:
            with urllib.request.urlopen(f"{emu.url}/_emu/endpoints/slow") as resp:
                return sum(i["in_flight"] for v in json.load(resp)["variants"] for i in v["instances"])

        eventually(in_flight)  # the call is being answered
    finally:
        with caplog.at_level(logging.DEBUG):
            emu.stop()
        caller.join(10)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_request_thread_finishing_after_the_stop_writes_nowhere():
    """A request thread wakes the server loop when it finishes an answer. One finishing after
    the stop wrote to the loop's closed wake-up pipe: EBADF with a traceback (CI saw it as a
    notebook's last output), or bytes into whatever file had since been given that number."""
    emu = EmulatorServer(port=0).start()
    httpd = emu._server.httpd
    emu.stop()
    read_end, write_end = os.pipe()  # likely given the numbers the closed wake-up pipe had
    try:
        os.set_blocking(read_end, False)
        httpd.pull_trigger()  # what a request thread does at the end of its answer
        try:
            stray = os.read(read_end, 16)
        except BlockingIOError:
            stray = b""
        assert stray == b""
    finally:
        os.close(read_end)
        os.close(write_end)


def test_running_points_boto3_at_it_and_restores_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", "http://elsewhere.invalid")
    monkeypatch.delenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", raising=False)
    with sagemaker_emu.running() as emu:
        assert os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] == emu.url
        sm = boto3.client("sagemaker")  # no endpoint_url, no credentials, no region given
        sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
        assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["m"]
    assert os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] == "http://elsewhere.invalid"
    assert "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME" not in os.environ


def test_env_command_prints_exports(server):
    result = subprocess.run([sys.executable, "-m", "sagemaker_emu", "env", "--url", server.url],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"export AWS_ENDPOINT_URL_SAGEMAKER={server.url}" in result.stdout.splitlines()
    assert f"export AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME={server.url}" in result.stdout.splitlines()
    assert not any(line.startswith("export AWS_ENDPOINT_URL=") for line in result.stdout.splitlines())
    bad = subprocess.run([sys.executable, "-m", "sagemaker_emu", "env", "--url", "http://127.0.0.1:9"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "no sagemaker-emu answers at http://127.0.0.1:9" in bad.stderr


def test_env_and_logs_find_a_server_on_any_port_and_eval_fails_without_one(tmp_path):
    """`make run PORT=0`, then the getting-started commands verbatim: no --url anywhere."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}  # a user of their own
    env.pop("SAGEMAKER_EMU_EXIT_WITH_PARENT", None)
    shell = [("bash", "-c", 'set -e; eval "$("$0" -m sagemaker_emu env)"; echo "$AWS_ENDPOINT_URL_SAGEMAKER"',
              sys.executable)]
    nothing = subprocess.run(*shell, env=env, capture_output=True, text=True, timeout=60)
    assert nothing.returncode != 0 and nothing.stdout == ""  # the eval fails; set -e stops the script
    assert "no sagemaker-emu server is running" in nothing.stderr
    proc = subprocess.Popen([sys.executable, "-m", "sagemaker_emu", "serve", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().split("listening on", 1)[1].strip()
        found = subprocess.run(*shell, env=env, capture_output=True, text=True, timeout=60)
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip() == url
        logs = subprocess.run([sys.executable, "-m", "sagemaker_emu", "logs", "nope"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert logs.returncode == 1 and "No endpoint named nope" in logs.stderr  # it reached the server
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not list((tmp_path / "sagemaker-emu" / "servers").glob("*.json"))  # it removed its record


PLUGIN_TESTS = '''
import boto3

def test_fixture_gives_clients(sagemaker_emu):
    sagemaker_emu.sagemaker.create_model(ModelName="m1", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    assert [m["ModelName"] for m in boto3.client("sagemaker").list_models()["Models"]] == ["m1"]

def test_clean_fixture_starts_empty(sagemaker_emu_clean):
    assert sagemaker_emu_clean.sagemaker.list_models()["Models"] == []

def test_faults_from_the_fixture(sagemaker_emu_clean):
    import pytest
    from botocore.config import Config
    from botocore.exceptions import ClientError
    emu = sagemaker_emu_clean
    emu.sagemaker.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    emu.sagemaker.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{"VariantName": "v",
        "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    emu.sagemaker.create_endpoint(EndpointName="e", EndpointConfigName="c")
    emu.sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="e")
    assert emu.fault("model_error", "e", status=418, times=1)["id"]
    rt = boto3.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="e", Body=b"x")
    assert info.value.response["OriginalStatusCode"] == 418
    assert rt.invoke_endpoint(EndpointName="e", Body=b"x")["Body"].read() == b"x"
'''

MOTO_STYLE_TESTS = '''
import boto3

def deploy_and_invoke():
    sm = boto3.client("sagemaker", region_name="us-east-1")
    rt = boto3.client("sagemaker-runtime", region_name="us-east-1")
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{"VariantName": "v", "ModelName": "m",
                              "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="e")
    return rt.invoke_endpoint(EndpointName="e", Body=b"ping")["Body"].read()

def test_one():
    assert deploy_and_invoke() == b"ping"

def test_two_starts_clean():
    assert deploy_and_invoke() == b"ping"  # would fail with "already existing" without the reset
'''


def test_pytest_plugin_fixtures(pytester):
    pytester.makepyfile(PLUGIN_TESTS)
    result = pytester.runpytest_subprocess("--sagemaker-emu-seed", "5")
    result.assert_outcomes(passed=3)


def test_a_moto_style_suite_runs_unchanged_with_autouse(pytester):
    pytester.makepyfile(MOTO_STYLE_TESTS)
    result = pytester.runpytest_subprocess("--sagemaker-emu-autouse")
    result.assert_outcomes(passed=2)


BOOTSTRAP = """
models:
  - ModelName: chat-model
    PrimaryContainer:
      Image: sagemaker-emu/echo
endpoint_configs:
  - EndpointConfigName: chat-config
    ProductionVariants:
      - VariantName: AllTraffic
        ModelName: chat-model
        InstanceType: ml.g5.xlarge
        InitialInstanceCount: 2
        RoutingConfig: {RoutingStrategy: LEAST_OUTSTANDING_REQUESTS}
endpoints:
  - EndpointName: chat
    EndpointConfigName: chat-config
"""


def test_bootstrap_serves_a_ready_endpoint(tmp_path):
    from sagemaker_emu.testing import EmulatorProcess, client

    (tmp_path / "stack.yaml").write_text(BOOTSTRAP)
    srv = EmulatorProcess("--bootstrap", str(tmp_path / "stack.yaml"))
    try:  # the URL is printed only once the endpoint is InService
        sm, rt = client(srv.url), client(srv.url, "sagemaker-runtime")
        ep = sm.describe_endpoint(EndpointName="chat")
        assert ep["EndpointStatus"] == "InService" and ep["ProductionVariants"][0]["CurrentInstanceCount"] == 2
        assert rt.invoke_endpoint(EndpointName="chat", Body=b"ready")["Body"].read() == b"ready"
    finally:
        srv.stop()


def test_bootstrap_failures_stop_the_server_with_the_reason(tmp_path):
    bad_name = BOOTSTRAP.replace("EndpointName: chat\n", "EndpointName: bad_name!\n")
    unknown_image = BOOTSTRAP.replace("sagemaker-emu/echo", "nobody/knows:1")
    for text, expected in ((bad_name, "endpoints[1]: CreateEndpoint failed: ValidationException: 1 validation error"),
                           (unknown_image, "endpoint chat is Failed: sagemaker-emu cannot run image 'nobody/knows:1'")):
        path = tmp_path / "stack.yaml"
        path.write_text(text)
        result = subprocess.run([sys.executable, "-m", "sagemaker_emu", "serve", "--port", "0", "--bootstrap", str(path)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1
        assert expected in result.stderr
        assert "listening on" not in result.stdout


MOTO_DECORATED_TESTS = '''
import boto3
from moto import mock_aws

@mock_aws
def test_a_moto_test_left_exactly_as_it_was():
    sm = boto3.client("sagemaker", region_name="us-east-1")
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[{"VariantName": "v", "ModelName": "m",
                              "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="e", EndpointConfigName="c")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="e")
    out = boto3.client("sagemaker-runtime", region_name="us-east-1").invoke_endpoint(EndpointName="e", Body=b"real")
    assert out["Body"].read() == b"real"  # moto would answer a canned body; the emulator echoes

@mock_aws
def test_a_moto_dynamodb_test_beside_it():
    """Only the services the emulator serves are sent to it: DynamoDB stays moto's."""
    db = boto3.client("dynamodb", region_name="us-east-1")
    db.create_table(TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    db.put_item(TableName="t", Item={"k": {"S": "v"}})
    assert db.get_item(TableName="t", Key={"k": {"S": "v"}})["Item"] == {"k": {"S": "v"}}
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert sm.list_endpoints()["Endpoints"] == []  # the emulator's, reset for this test
'''


def test_a_mock_aws_decorated_test_reaches_the_emulator_with_autouse(pytester):
    import pytest

    pytest.importorskip("moto")
    pytester.makepyfile(MOTO_DECORATED_TESTS)
    result = pytester.runpytest_subprocess("--sagemaker-emu-autouse")
    result.assert_outcomes(passed=2)


FIXTURE_THEN_MOTO = '''
import json
import os
import boto3
from moto import mock_aws

def test_uses_the_emulator(sagemaker_emu):
    assert os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] == sagemaker_emu.url

@mock_aws
def test_plain_moto_after_it():
    assert "AWS_ENDPOINT_URL_SAGEMAKER" not in os.environ
    sm = boto3.client("sagemaker", region_name="us-east-1")
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "x"}, ExecutionRoleArn="arn:aws:iam::123456789012:role/r")
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["m"]  # moto's store, not the emulator
'''


def test_the_session_fixture_does_not_leak_into_later_tests(pytester):
    # Item 14: a plain @mock_aws test passed alone and failed after one that used the fixture.
    import pytest

    pytest.importorskip("moto")
    pytester.makepyfile(FIXTURE_THEN_MOTO)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_a_server_the_harness_started_stops_when_its_starter_dies_without_stopping_it():
    script = ("import os, json\n"
              "from sagemaker_emu.testing import EmulatorProcess, deploy\n"
              "emu = EmulatorProcess()\n"
              "deploy(emu.client(), 'left')\n"
              "pids = [i['pid'] for v in emu.endpoint_view('left')['variants'] for i in v['instances']]\n"
              "print(json.dumps([emu.proc.pid, *pids]), flush=True)\n"
              "os._exit(0)\n")  # no stop(), no atexit: as if the test runner were killed
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    pids = json.loads(out.stdout)
    assert len(pids) == 2
    eventually(lambda: not any(alive(p) for p in pids))

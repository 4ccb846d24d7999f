"""Issue 11 item 2: only the user may drive the emulator, and a request cannot turn a
variable or a path into a command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import EmulatorProcess, client, deploy, variant

FIXTURES = Path(__file__).parent.parent / "fixtures"
LIST = {"X-Amz-Target": "SageMaker.ListEndpoints", "Content-Type": "application/x-amz-json-1.1"}


def _port(srv) -> str:
    return srv.url.rsplit(":", 1)[1]


@pytest.mark.parametrize("path,headers", [
    ("/", LIST), ("/endpoints/ep1/invocations", {"Content-Type": "application/json"}), ("/_emu/reset", {}),
])
def test_a_foreign_host_name_is_refused_everywhere(server, sm, path, headers):
    deploy(sm, "ep1")
    status, resp_headers, body = server.post(path, b"{}", {**headers, "Host": f"attacker.example:{_port(server)}"})
    assert status == 403
    assert resp_headers["x-amzn-ErrorType"] == "AccessDeniedException" and json.loads(body)["__type"] == "AccessDeniedException"
    assert sm.describe_endpoint(EndpointName="ep1")["EndpointStatus"] == "InService"  # no reset happened


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "api.localhost:{port}", "[::1]:{port}", "10.1.2.3"])
def test_addresses_and_localhost_are_answered(server, host):
    status, _, _ = server.post("/", b"{}", {**LIST, "Host": host.format(port=_port(server))})
    assert status == 200


def test_configured_names_are_answered():
    srv = EmulatorProcess("--allowed-host", "emu.internal")
    try:
        assert srv.post("/", b"{}", {**LIST, "Host": f"emu.internal:{_port(srv)}"})[0] == 200
        assert srv.post("/", b"{}", {**LIST, "Host": "other.internal"})[0] == 403
    finally:
        srv.stop()


def test_a_cross_origin_browser_post_is_refused(server, sm):
    deploy(sm, "ep1")
    # What a foreign page's fetch(..., {method: "POST", body: "..."}) sends: text/plain, an Origin.
    status, _, body = server.post("/_emu/faults", json.dumps({"kind": "kill_instance", "endpoint": "ep1"}).encode(),
                                  {"Content-Type": "text/plain", "Origin": "https://attacker.example"})
    assert status == 403 and json.loads(body)["__type"] == "AccessDeniedException"
    assert json.loads(server.post("/_emu/faults", method="GET")[2])["faults"] == []
    same = server.url.split("//", 1)[1]
    assert server.post("/", b"{}", {**LIST, "Origin": f"http://{same}", "Host": same})[0] == 200
    assert server.post("/", b"{}", {**LIST, "Origin": "null"})[0] == 403


def test_a_region_that_does_not_exist_is_refused(server):
    sm = client(server.url, region="xx-nowhere-9")
    with pytest.raises(ClientError) as err:
        sm.list_endpoints()
    assert err.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert "valid region" in err.value.response["Error"]["Message"]
    assert client(server.url, region="eu-west-3").list_endpoints()["Endpoints"] == []


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    creds = tmp_path_factory.mktemp("creds") / "credentials"
    creds.write_text("[default]\naws_access_key_id = AKIDEMU\naws_secret_access_key = s3cret\n")
    srv = EmulatorProcess("--auth", "sigv4", "--credentials", str(creds))
    yield srv
    srv.stop()


def _signed_client(srv, service, key="AKIDEMU", secret="s3cret"):
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"total_max_attempts": 1}))


def test_sigv4_accepts_the_configured_key_on_both_apis(signed):
    sm = _signed_client(signed, "sagemaker")
    deploy(sm, "ep1")
    rt = _signed_client(signed, "sagemaker-runtime")
    assert rt.invoke_endpoint(EndpointName="ep1", Body=b'{"a": 1}', ContentType="application/json")["Body"].read() == b'{"a": 1}'


def test_env_still_names_the_sdk_config_when_the_server_checks_signatures(signed, tmp_path):
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "sagemaker_emu", "env", "--url", signed.url], capture_output=True,
                            text=True, timeout=60, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert f"export SAGEMAKER_USER_CONFIG_OVERRIDE={tmp_path}/.cache/sagemaker-emu/sagemaker-sdk-config-us-east-1-" \
           "123456789012.yaml" in result.stdout


@pytest.mark.parametrize("key,secret,code", [
    ("AKIDEMU", "wrong", "InvalidSignatureException"),
    ("AKIDOTHER", "s3cret", "UnrecognizedClientException"),
])
def test_sigv4_refuses_wrong_keys(signed, key, secret, code):
    for service, call in (("sagemaker", lambda c: c.list_endpoints()),
                          ("sagemaker-runtime", lambda c: c.invoke_endpoint(EndpointName="ep1", Body=b"x"))):
        with pytest.raises(ClientError) as err:
            call(_signed_client(signed, service, key, secret))
        assert err.value.response["Error"]["Code"] == code
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize("service,call,wrong_secret,unknown_key", [
    ("s3", lambda c: c.list_buckets(), "SignatureDoesNotMatch", "InvalidAccessKeyId"),  # REST-XML
    ("sts", lambda c: c.get_caller_identity(), "SignatureDoesNotMatch", "InvalidClientTokenId"),  # query
    ("sns", lambda c: c.list_topics(), "SignatureDoesNotMatch", "InvalidClientTokenId"),  # query
    ("cloudwatch", lambda c: c.list_metrics(), "InvalidSignatureException", "UnrecognizedClientException"),  # CBOR
    ("logs", lambda c: c.describe_log_groups(), "InvalidSignatureException", "UnrecognizedClientException"),  # JSON 1.1
])
def test_sigv4_refusals_reach_every_service_in_its_own_protocol(signed, service, call, wrong_secret, unknown_key):
    """Before, every refusal was JSON: boto3's XML and CBOR parsers failed on it instead of naming the error."""
    for key, secret, code in (("AKIDEMU", "wrong", wrong_secret), ("AKIDOTHER", "s3cret", unknown_key)):
        with pytest.raises(ClientError) as err:
            call(_signed_client(signed, service, key, secret))
        assert err.value.response["Error"]["Code"] == code
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    call(_signed_client(signed, service))  # the configured key still works


def test_sigv4_refuses_unsigned_requests(signed):
    status, headers, _ = signed.post("/", b"{}", LIST)
    assert status == 403 and headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_request_variables_cannot_change_the_interpreter_or_loader(server, sm, rt):
    env = {"PYTHONPATH": "/tmp/evil", "LD_PRELOAD": "/tmp/evil.so", "BROWSER": "touch /tmp/pwned",
           "PATH": "/tmp/evil", "PYTHONSTARTUP": "/tmp/evil.py", "MY_SETTING": "kept"}
    sm.create_model(ModelName="env", PrimaryContainer={
        "Image": "my/framework:1", "ModelDataUrl": (FIXTURES / "env_model").resolve().as_uri(), "Environment": env})
    sm.create_endpoint_config(EndpointConfigName="env", ProductionVariants=[variant(model="env")])
    sm.create_endpoint(EndpointName="env", EndpointConfigName="env")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="env", WaiterConfig={"Delay": 1})
    seen = json.loads(rt.invoke_endpoint(EndpointName="env", Body=json.dumps(list(env)),
                                         ContentType="application/json")["Body"].read())
    assert seen["MY_SETTING"] == "kept"
    assert all(seen[name] != value for name, value in env.items() if name != "MY_SETTING"), seen
    assert "not passed to its workers" in server.logs()


@pytest.mark.parametrize("environment,why", [
    # Before: importing the standard library's `antigravity` ran $BROWSER.
    ({"SAGEMAKER_SUBMIT_DIRECTORY": str(Path(json.__file__).parent.parent), "SAGEMAKER_PROGRAM": "antigravity"},
     "will not run"),
    ({"SAGEMAKER_PROGRAM": "../" * 40 + json.__file__.lstrip("/")}, "will not run"),  # a path out of code/
])
def test_code_outside_the_model_and_the_roots_is_not_run(server, sm, environment, why):
    sm.create_model(ModelName="out", PrimaryContainer={
        "Image": "my/framework:1", "ModelDataUrl": (FIXTURES / "linear_model").resolve().as_uri(),
        "Environment": environment})
    sm.create_endpoint_config(EndpointConfigName="out", ProductionVariants=[variant(model="out")])
    sm.create_endpoint(EndpointName="out", EndpointConfigName="out")
    with pytest.raises(Exception):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="out", WaiterConfig={"Delay": 1, "MaxAttempts": 3})
    described = sm.describe_endpoint(EndpointName="out")
    assert described["EndpointStatus"] == "Failed" and why in described["FailureReason"]


def test_the_sdk_layout_opt_ml_model_code_is_the_models_own_code(server, sm, rt):
    sm.create_model(ModelName="sdk", PrimaryContainer={
        "Image": "my/framework:1", "ModelDataUrl": (FIXTURES / "linear_model").resolve().as_uri(),
        "Environment": {"SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code", "SAGEMAKER_PROGRAM": "inference.py"}})
    sm.create_endpoint_config(EndpointConfigName="sdk", ProductionVariants=[variant(model="sdk")])
    sm.create_endpoint(EndpointName="sdk", EndpointConfigName="sdk")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="sdk", WaiterConfig={"Delay": 1})
    body = rt.invoke_endpoint(EndpointName="sdk", Body=b'{"instances": [1]}', ContentType="application/json")
    assert json.loads(body["Body"].read())["predictions"]


def test_directory_model_data_outside_the_roots_fails_the_endpoint():
    srv = EmulatorProcess()  # the test conftest allows the temp dir; this one only its own roots
    try:
        sm = client(srv.url)
        sm.create_model(ModelName="etc", PrimaryContainer={"Image": "my/framework:1", "ModelDataUrl": "file:///etc"})
        sm.create_endpoint_config(EndpointConfigName="etc", ProductionVariants=[variant(model="etc")])
        sm.create_endpoint(EndpointName="etc", EndpointConfigName="etc")
        with pytest.raises(Exception):
            sm.get_waiter("endpoint_in_service").wait(EndpointName="etc", WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        reason = sm.describe_endpoint(EndpointName="etc")["FailureReason"]
        assert "outside the directories sagemaker-emu may read" in reason and "--model-root" in reason
    finally:
        srv.stop()

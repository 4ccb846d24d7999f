"""Issue 11 item 2: only the user may drive the emulator, and a request cannot turn a
variable or a path into a command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, WaiterError

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


def _signed_client(srv, service, key="AKIDEMU", secret="s3cret", config=None):
    import boto3
    from botocore.config import Config

    config = Config(retries={"total_max_attempts": 1}).merge(config) if config else Config(
        retries={"total_max_attempts": 1})
    return boto3.client(service, endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, config=config)


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
    with pytest.raises(WaiterError):
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
        with pytest.raises(WaiterError):
            sm.get_waiter("endpoint_in_service").wait(EndpointName="etc", WaiterConfig={"Delay": 1, "MaxAttempts": 3})
        reason = sm.describe_endpoint(EndpointName="etc")["FailureReason"]
        assert "outside the directories sagemaker-emu may read" in reason and "--model-root" in reason
    finally:
        srv.stop()


@pytest.mark.parametrize("key", ["with space.txt", "plus+sign", "caf\u00e9/\u00fcber", "double//slash", "a=b&c@d",
                                 "dots/./and/../x", "tilde~percent%41"])
def test_sigv4_accepts_s3_keys_that_need_encoding(signed, key):
    """Issue 25 item 4: S3 signs its path as sent, once encoded and not normalised; the verifier
    re-encoded and normalised it, so these keys got SignatureDoesNotMatch."""
    s3 = _signed_client(signed, "s3")
    s3.create_bucket(Bucket="signed-keys")
    s3.put_object(Bucket="signed-keys", Key=key, Body=b"kept")
    assert s3.get_object(Bucket="signed-keys", Key=key)["Body"].read() == b"kept"


def test_sigv4_large_uploads_are_verified_then_stored_from_disk(signed):
    """A signed body of 8 MiB or more is hashed by the verifier and spooled by the embedded S3
    (issue 25 item 3); both read the same bytes, once each."""
    import io
    import os

    s3 = _signed_client(signed, "s3")
    s3.create_bucket(Bucket="signed-large")
    data = os.urandom(9 * 1024 * 1024)
    s3.put_object(Bucket="signed-large", Key="a b+\u00fc", Body=data, ChecksumAlgorithm="CRC32")
    assert s3.get_object(Bucket="signed-large", Key="a b+\u00fc")["Body"].read() == data
    s3.upload_fileobj(io.BytesIO(data * 2), "signed-large", "multipart")
    assert s3.get_object(Bucket="signed-large", Key="multipart")["Body"].read() == data * 2


def test_sigv4_accepts_presigned_urls_and_refuses_them_expired_or_altered(signed):
    import requests

    from botocore.config import Config

    s3 = _signed_client(signed, "s3")
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="k y", Body=b"shared")
    v4 = _signed_client(signed, "s3", config=Config(signature_version="s3v4"))
    for maker in (s3, v4):  # boto3's default for S3 presigns with signature version 2
        url = maker.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "k y"}, ExpiresIn=60)
        assert requests.get(url, timeout=10).content == b"shared", url  # before: 403
        assert requests.get(url.replace("presigned/k%20y", "presigned/other"), timeout=10).status_code == 403
        expired = maker.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "k y"},
                                               ExpiresIn=-10)
        answer = requests.get(expired, timeout=10)
        assert answer.status_code == 403 and b"Request has expired" in answer.content


def _captured_create_model(srv, name: str):
    """A CreateModel as botocore signs it: (url, headers, body)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps({"ModelName": name, "PrimaryContainer": {"Image": "sagemaker-emu/echo"}}).encode()
    request = AWSRequest("POST", srv.url + "/", data=body, headers={
        "X-Amz-Target": "SageMaker.CreateModel", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials("AKIDEMU", "s3cret"), "sagemaker", "us-east-1").add_auth(request)
    return dict(request.headers), body


def test_sigv4_hashes_the_body_instead_of_trusting_a_declared_hash(signed):
    """Issue 25 item 4: a captured CreateModel replayed with another body plus an unsigned
    X-Amz-Content-SHA256 of the original body created the tampered model; UNSIGNED-PAYLOAD was
    accepted on SageMaker calls."""
    import hashlib

    headers, body = _captured_create_model(signed, "honest")
    tampered = body.replace(b"honest", b"evil00")
    for extra in ({"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()}, {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}):
        status, answer_headers, _ = signed.post("/", tampered, {**headers, **extra})
        assert (status, answer_headers["x-amzn-ErrorType"]) == (403, "InvalidSignatureException")
    status, _, _ = signed.post("/", body, headers)
    assert status == 200  # the body it was signed with is still accepted
    names = [m["ModelName"] for m in _signed_client(signed, "sagemaker").list_models()["Models"]]
    assert "honest" in names and "evil00" not in names


def test_sigv4_refuses_an_s3_body_that_differs_from_its_signed_hash(signed):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    _signed_client(signed, "s3").create_bucket(Bucket="hashed")
    request = AWSRequest("PUT", signed.url + "/hashed/k", data=b"signed body")
    S3SigV4Auth(Credentials("AKIDEMU", "s3cret"), "s3", "us-east-1").add_auth(request)
    def put(body: bytes) -> tuple[int, bytes]:
        import http.client

        connection = http.client.HTTPConnection(signed.host, signed.port, timeout=10)
        try:
            connection.request("PUT", "/hashed/k", body, dict(request.headers))
            answer = connection.getresponse()
            return answer.status, answer.read()
        finally:
            connection.close()

    status, answer = put(b"other body!")  # before: stored
    assert status == 400 and b"<Code>XAmzContentSHA256Mismatch</Code>" in answer
    assert put(b"signed body")[0] == 200
    assert _signed_client(signed, "s3").get_object(Bucket="hashed", Key="k")["Body"].read() == b"signed body"

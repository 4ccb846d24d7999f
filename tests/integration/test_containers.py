"""What runs inside an instance: inference.py (tarball and directory), image-map commands and
URLs, and what happens when a model cannot start or a handler fails."""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError, WaiterError

from sagemaker_emu.testing import EmulatorProcess, client, deploy

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ONE_POLL = {"MaxAttempts": 1}


def make_tarball(source: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        for item in source.iterdir():
            tar.add(item, arcname=item.name)
    return dest


FRAMEWORK_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"


@pytest.mark.parametrize("form", ["tarball", "directory"])
def test_inference_py_model(sm, rt, tmp_path, form):
    source = FIXTURES / "linear_model"
    url = (make_tarball(source, tmp_path / "model.tar.gz") if form == "tarball" else source).as_uri()
    deploy(sm, "linear", container={"Image": FRAMEWORK_IMAGE, "ModelDataUrl": url})
    resp = rt.invoke_endpoint(EndpointName="linear", Body=json.dumps({"instances": [1, 2, 3]}),
                              ContentType="application/json")
    assert json.loads(resp["Body"].read()) == {"predictions": [3.0, 5.0, 7.0]}
    resp = rt.invoke_endpoint(EndpointName="linear", Body=b"1,10", ContentType="text/csv", Accept="text/csv")
    assert (resp["Body"].read(), resp["ContentType"]) == (b"3.0,21.0", "text/csv")


def test_submit_directory_points_at_the_code(sm, rt, tmp_path):
    (tmp_path / "weights.json").write_text('{"slope": 10, "intercept": 0}')
    deploy(sm, "linear", container={"Image": FRAMEWORK_IMAGE, "ModelDataUrl": tmp_path.as_uri(), "Environment": {
        "SAGEMAKER_SUBMIT_DIRECTORY": (FIXTURES / "linear_model" / "code").as_uri(),
        "SAGEMAKER_PROGRAM": "inference.py"}})
    resp = rt.invoke_endpoint(EndpointName="linear", Body=b'{"instances": [4]}', ContentType="application/json")
    assert json.loads(resp["Body"].read()) == {"predictions": [40]}


def test_model_fn_that_raises_fails_the_endpoint_with_its_log(sm):
    deploy(sm, "broken", container={"Image": FRAMEWORK_IMAGE, "ModelDataUrl": (FIXTURES / "broken_model").as_uri()},
                 wait=False)
    with pytest.raises(Exception) as info:
        sm.get_waiter("endpoint_in_service").wait(EndpointName="broken", WaiterConfig=ONE_POLL)
    assert 'matched expected path: "Failed"' in str(info.value)
    ep = sm.describe_endpoint(EndpointName="broken")
    assert ep["EndpointStatus"] == "Failed"
    reason = ep["FailureReason"]
    assert reason.startswith("The primary container for production variant AllTraffic did not pass the ping health check.")
    assert "weights file is corrupt" in reason and len(reason) <= 1024
    sm.delete_endpoint(EndpointName="broken")  # the one thing a Failed endpoint allows
    sm.get_waiter("endpoint_deleted").wait(EndpointName="broken", WaiterConfig=ONE_POLL)


def test_handler_exception_is_a_model_error(sm, rt):
    deploy(sm, "raiser", container={"Image": FRAMEWORK_IMAGE, "ModelDataUrl": (FIXTURES / "raising_handler").as_uri()})
    assert rt.invoke_endpoint(EndpointName="raiser", Body=b"fine")["Body"].read() == b"FINE"
    with pytest.raises(ClientError) as info:
        rt.invoke_endpoint(EndpointName="raiser", Body=b"boom")
    err = info.value.response
    assert err["Error"]["Code"] == "ModelError" and err["OriginalStatusCode"] == 500
    assert "the handler could not score this input" in err["OriginalMessage"]
    # Item 13: the exception's type, and where the traceback is.
    assert err["OriginalMessage"].startswith("ValueError: the handler could not score this input")
    assert "sagemaker-emu logs raiser" in err["OriginalMessage"]
    assert err["Error"]["Message"].startswith("Received server error (500) from primary with message")
    assert rt.invoke_endpoint(EndpointName="raiser", Body=b"again")["Body"].read() == b"AGAIN"


def test_unknown_image_fails_with_what_to_do(sm):
    deploy(sm, "mystery", container={"Image": "my-registry/my-image:1"}, wait=False)
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="mystery", WaiterConfig=ONE_POLL)
    reason = sm.describe_endpoint(EndpointName="mystery")["FailureReason"]
    assert "cannot run image 'my-registry/my-image:1'" in reason and "--image-map" in reason


def test_missing_s3_model_data_fails_naming_the_url(sm):
    deploy(sm, "s3model", container={"Image": FRAMEWORK_IMAGE, "ModelDataUrl": "s3://bucket/model.tar.gz"}, wait=False)
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="s3model", WaiterConfig=ONE_POLL)
    assert sm.describe_endpoint(EndpointName="s3model")["FailureReason"] == (
        'Failed to download model data for container "container_1" from URL: "s3://bucket/model.tar.gz". Please '
        "ensure that there is an object located at the URL and that the role passed to CreateModel has "
        "permissions to download the object.")


def test_model_data_failures_are_not_called_health_check_failures(sm):
    # Item 13: a built-in image with unusable model data said "did not pass the ping health check".
    deploy(sm, "s3echo", container={"Image": "sagemaker-emu/echo", "ModelDataUrl": "s3://bucket/model.tar.gz"}, wait=False)
    with pytest.raises(WaiterError):
        sm.get_waiter("endpoint_in_service").wait(EndpointName="s3echo", WaiterConfig=ONE_POLL)
    reason = sm.describe_endpoint(EndpointName="s3echo")["FailureReason"]
    assert reason.startswith("Could not prepare the model data of production variant AllTraffic: Failed to download")
    assert "ping" not in reason


@pytest.fixture
def mapped_server(tmp_path):
    """A server whose image map has a command image and a URL image (a worker started by hand)."""
    manual_port = _free_port()
    manual = subprocess.Popen([sys.executable, "-m", "sagemaker_emu.worker", "echo"],
                              env={**os.environ, "SAGEMAKER_BIND_TO_PORT": str(manual_port)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    image_map = tmp_path / "images.toml"
    image_map.write_text(
        '[images."acme/custom:1"]\n'
        f'command = ["{sys.executable}", "{FIXTURES / "user_container.py"}"]\n'
        'env = { GREETING = "hello from acme" }\n'
        '[images."acme/remote:1"]\n'
        f'url = "http://127.0.0.1:{manual_port}"\n'
    )
    srv = EmulatorProcess("--image-map", str(image_map))
    yield srv
    srv.stop()
    manual.terminate()
    manual.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_image_map_command_and_url(mapped_server):
    sm, rt = client(mapped_server.url), client(mapped_server.url, "sagemaker-runtime")
    deploy(sm, "custom", container={"Image": "acme/custom:1", "Environment": {"UNUSED": "1"}})
    out = json.loads(rt.invoke_endpoint(EndpointName="custom", Body=b"ping?")["Body"].read())
    assert out == {"container": "hello from acme", "echo": "ping?"}
    deploy(sm, "remote", container={"Image": "acme/remote:1"})
    assert rt.invoke_endpoint(EndpointName="remote", Body=b"far away")["Body"].read() == b"far away"


def test_image_map_commands_and_urls_as_containers_of_one_model(mapped_server):
    """A model of several containers runs each as a process of its own, so an --image-map
    command (and a URL) can be one of them: here the command's answer goes through the URL's echo."""
    sm, rt = client(mapped_server.url), client(mapped_server.url, "sagemaker-runtime")
    sm.create_model(ModelName="mixed-model", Containers=[{"Image": "acme/custom:1"}, {"Image": "acme/remote:1"}],
                    ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerRole")
    deploy(sm, "mixed")
    out = json.loads(rt.invoke_endpoint(EndpointName="mixed", Body=b"through both")["Body"].read())
    assert out == {"container": "hello from acme", "echo": "through both"}

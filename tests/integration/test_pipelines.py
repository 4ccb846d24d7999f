"""Models of several containers (`Containers`): a serial inference pipeline passes each
container's answer to the next, and Direct mode runs the container a call names."""

import json

import pytest

from sagemaker_emu.testing import client, deploy
from tests.integration.test_aws_images import SKLEARN, tarball

# A featurizer that answers CSV by default (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, as SageMaker's
# pipeline guide sets it), and a model that reads CSV and answers JSON or CSV as asked.
FEATURIZER = b'''
import json, os

def model_fn(model_dir):
    assert "SCALE" not in os.environ  # the next container's Environment is its own
    return None

def input_fn(body, content_type):
    assert content_type == "application/json", content_type
    return json.loads(body)["x"]

def predict_fn(data, model):
    return [[v, v * v] for v in data]
'''
REGRESSOR = b'''
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        return json.load(f)

def input_fn(body, content_type):
    assert content_type == "text/csv", content_type
    return [[float(v) for v in line.split(",")] for line in body.decode().splitlines()]

def predict_fn(rows, w):
    scale = float(os.environ["SCALE"])  # its container's Environment, as user code reads it
    return [scale * (w["a"] * r[0] + w["b"] * r[1]) for r in rows]
'''


@pytest.fixture
def archives(server):
    s3 = client(server.url, "s3")
    s3.create_bucket(Bucket="pipeline")
    s3.put_object(Bucket="pipeline", Key="featurizer.tar.gz", Body=tarball({"code/inference.py": FEATURIZER}))
    s3.put_object(Bucket="pipeline", Key="regressor.tar.gz",
                  Body=tarball({"code/inference.py": REGRESSOR, "weights.json": b'{"a": 1, "b": 10}'}))
    featurizer = {"Image": SKLEARN, "ModelDataUrl": "s3://pipeline/featurizer.tar.gz",
                  "Environment": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}}
    regressor = {"Image": SKLEARN, "ModelDataUrl": "s3://pipeline/regressor.tar.gz", "Environment": {"SCALE": "1"}}
    return featurizer, regressor


def create_model(sm, name: str, containers: list[dict], mode: str | None = None) -> None:
    extra = {"InferenceExecutionConfig": {"Mode": mode}} if mode else {}
    sm.create_model(ModelName=f"{name}-model", Containers=containers,
                    ExecutionRoleArn="arn:aws:iam::123456789012:role/SageMakerRole", **extra)


def test_a_serial_pipeline_passes_each_answer_to_the_next_container(server, sm, rt, archives):
    create_model(sm, "pipe", list(archives))
    deploy(sm, "pipe", InitialInstanceCount=2)
    status, _, body = server.post("/_emu/endpoints/pipe", method="GET")
    instances = json.loads(body)["variants"][0]["instances"]
    assert sorted(i["id"] for i in instances) == ["AllTraffic-1", "AllTraffic-2"]
    for instance in instances:  # each container is a process of its own under the instance's
        with open(f"/proc/{instance['pid']}/task/{instance['pid']}/children") as f:
            assert len(f.read().split()) == 2
    answer = rt.invoke_endpoint(EndpointName="pipe", Body=json.dumps({"x": [1, 2]}), ContentType="application/json",
                                Accept="application/json")
    assert answer["ContentType"] == "application/json"
    assert json.loads(answer["Body"].read()) == [11.0, 42.0]  # 1 + 10*1, 2 + 10*4
    csv = rt.invoke_endpoint(EndpointName="pipe", Body=json.dumps({"x": [3]}), ContentType="application/json",
                             Accept="text/csv")
    assert csv["Body"].read() == b"93.0"  # only the last container answers in the caller's Accept


def test_a_failing_container_ends_the_pipeline_with_its_error(sm, rt, archives):
    featurizer, regressor = archives
    create_model(sm, "pipe-err", [featurizer, regressor])
    deploy(sm, "pipe-err")
    with pytest.raises(rt.exceptions.ModelError, match="AssertionError: text/plain"):
        rt.invoke_endpoint(EndpointName="pipe-err", Body=b"1", ContentType="text/plain")


def test_direct_mode_runs_the_container_the_call_names(sm, rt, archives):
    featurizer, regressor = archives
    create_model(sm, "direct", [{**featurizer, "ContainerHostname": "features"},
                                {**regressor, "ContainerHostname": "regress"}], mode="Direct")
    deploy(sm, "direct")
    features = rt.invoke_endpoint(EndpointName="direct", TargetContainerHostname="features",
                                  Body=json.dumps({"x": [2]}), ContentType="application/json")
    assert features["Body"].read() == b"2,4"
    scored = rt.invoke_endpoint(EndpointName="direct", TargetContainerHostname="regress", Body=b"2,4",
                                ContentType="text/csv")
    assert json.loads(scored["Body"].read()) == [42.0]
    with pytest.raises(rt.exceptions.ValidationError, match="name one with TargetContainerHostname"):
        rt.invoke_endpoint(EndpointName="direct", Body=b"2,4", ContentType="text/csv")
    with pytest.raises(rt.exceptions.ValidationError, match="has no container with hostname nope"):
        rt.invoke_endpoint(EndpointName="direct", TargetContainerHostname="nope", Body=b"2,4", ContentType="text/csv")


def test_direct_mode_needs_a_hostname_for_every_container(sm, archives):
    featurizer, regressor = archives
    with pytest.raises(sm.exceptions.ClientError, match="ContainerHostname must be given for every container"):
        create_model(sm, "bad", [{**featurizer, "ContainerHostname": "a"}, regressor], mode="Direct")
    with pytest.raises(sm.exceptions.ClientError, match="a is repeated"):
        create_model(sm, "bad", [{**featurizer, "ContainerHostname": "a"}, {**regressor, "ContainerHostname": "a"}])


def test_a_container_that_dies_takes_its_instance_down_and_it_is_restarted(server, sm, rt, archives):
    import os
    import signal

    from tests.integration.test_fleet import eventually

    create_model(sm, "pipe-crash", list(archives))
    deploy(sm, "pipe-crash")

    def instance() -> dict:
        status, _, body = server.post("/_emu/endpoints/pipe-crash", method="GET")
        return json.loads(body)["variants"][0]["instances"][0]

    before = instance()["pid"]
    with open(f"/proc/{before}/task/{before}/children") as f:
        second = int(f.read().split()[1])
    os.kill(second, signal.SIGKILL)
    eventually(lambda: instance()["pid"] not in (None, before) and instance()["health"] == "Healthy")
    answer = rt.invoke_endpoint(EndpointName="pipe-crash", Body=json.dumps({"x": [1]}), ContentType="application/json",
                                Accept="application/json")
    assert json.loads(answer["Body"].read()) == [11.0]


def test_each_container_has_its_own_metrics(server, sm, rt, archives):
    """ContainerLatency per container for a pipeline; with direct invocation also the
    container's own Invocations and errors (dimension ContainerName), as SageMaker documents."""
    import datetime

    featurizer, regressor = archives
    create_model(sm, "pipe-m", [{**featurizer, "ContainerHostname": "features"},
                                {**regressor, "ContainerHostname": "regress"}])
    deploy(sm, "pipe-m")
    create_model(sm, "direct-m", [{**featurizer, "ContainerHostname": "features"},
                                  {**regressor, "ContainerHostname": "regress"}], mode="Direct")
    deploy(sm, "direct-m")
    for _ in range(2):
        rt.invoke_endpoint(EndpointName="pipe-m", Body=json.dumps({"x": [1]}), ContentType="application/json")
    rt.invoke_endpoint(EndpointName="direct-m", TargetContainerHostname="regress", Body=b"1,1", ContentType="text/csv")
    with pytest.raises(rt.exceptions.ModelError):  # the featurizer refuses CSV: a 5XX of that container
        rt.invoke_endpoint(EndpointName="direct-m", TargetContainerHostname="features", Body=b"1,1",
                           ContentType="text/csv")
    cw = client(server.url, "cloudwatch")
    end = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)

    def stat(endpoint: str, container: str, name: str, statistic: str) -> float:
        dims = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"},
                {"Name": "ContainerName", "Value": container}]
        points = cw.get_metric_statistics(Namespace="AWS/SageMaker", MetricName=name, Dimensions=dims, Period=3600,
                                          StartTime=end - datetime.timedelta(hours=1), EndTime=end,
                                          Statistics=[statistic])["Datapoints"]
        return points[0][statistic] if points else 0.0

    assert stat("pipe-m", "features", "ContainerLatency", "SampleCount") == 2
    assert stat("pipe-m", "regress", "ContainerLatency", "SampleCount") == 2
    assert stat("pipe-m", "regress", "Invocations", "Sum") == 0  # per-container counts are direct invocation's
    assert stat("direct-m", "regress", "Invocations", "Sum") == 1
    assert stat("direct-m", "features", "Invocation5XXErrors", "Sum") == 1
    assert stat("direct-m", "features", "ContainerLatency", "Maximum") > 0


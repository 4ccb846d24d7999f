"""One URL for the AWS around an endpoint (issue 14): S3, SNS, SQS, STS and IAM served by
moto's backends in the emulator's process, dispatched by the SigV4 scope; s3:// model data
fetched from that S3 (or from a real S3-compatible server given with --s3-endpoint)."""

import http.client
import io
import json
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from sagemaker_emu.testing import DUMMY_CREDENTIALS, EmulatorProcess, EmulatorServer, client, deploy, variant

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PYTORCH_IMAGE = "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.1-cpu-py310"
ONE_POLL = {"MaxAttempts": 1}


def model_tarball(source: Path = FIXTURES / "linear_model") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for item in source.iterdir():
            tar.add(item, arcname=item.name)
    return buffer.getvalue()


def predict(rt, endpoint: str) -> list:
    answer = rt.invoke_endpoint(EndpointName=endpoint, Body=json.dumps({"instances": [1, 2]}),
                                ContentType="application/json")
    return json.loads(answer["Body"].read())["predictions"]


@pytest.fixture(scope="module")
def local():
    """In this process, so that the model data cache can be looked at."""
    with EmulatorServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(local):
    local.reset()


def test_aws_endpoint_url_alone_reaches_every_neighbour(local, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", local.url)
    for name, value in {**DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket="models", Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket="models", Key="a/b.txt")["Body"].read() == b"hello"
    assert boto3.client("sts").get_caller_identity()["Account"] == "123456789012"
    iam = boto3.client("iam")
    iam.create_role(RoleName="sm", AssumeRolePolicyDocument="{}")
    assert iam.get_role(RoleName="sm")["Role"]["Arn"] == "arn:aws:iam::123456789012:role/sm"
    sqs, sns = boto3.client("sqs"), boto3.client("sns")
    queue = sqs.create_queue(QueueName="done")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = sns.create_topic(Name="results")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sns.publish(TopicArn=topic, Message="finished")
    assert json.loads(sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"])["Message"] == "finished"
    assert boto3.client("sagemaker").list_models()["Models"] == []  # and SageMaker, on the same URL


def test_virtual_host_and_presigned_s3_addressing(local):
    s3 = local.client("s3")
    s3.create_bucket(Bucket="vhost")
    s3.put_object(Bucket="vhost", Key="k", Body=b"by host")
    port = urlsplit(local.url).port
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    signer = client(f"http://localhost:{port}", "s3", s3={"addressing_style": "virtual"})
    presigned = signer.generate_presigned_url("get_object", Params={"Bucket": "vhost", "Key": "k"})
    assert urlsplit(presigned).netloc == f"vhost.localhost:{port}"
    # the Host header names the bucket; the request is sent to 127.0.0.1 (no resolver needed)
    connection.request("GET", urlsplit(presigned).path + "?" + urlsplit(presigned).query,
                       headers={"Host": f"vhost.localhost:{port}"})
    answer = connection.getresponse()
    assert (answer.status, answer.read()) == (200, b"by host")
    path_style = s3.generate_presigned_url("get_object", Params={"Bucket": "vhost", "Key": "k"})
    assert requests.get(path_style, timeout=10).content == b"by host"


@pytest.mark.parametrize("service, call", [
    ("dynamodb", lambda c: c.list_tables()),  # JSON 1.0
    ("lambda", lambda c: c.list_functions()),  # REST-JSON, a GET without a body
    ("cloudformation", lambda c: c.list_stacks()),  # query: XML
    ("route53", lambda c: c.list_hosted_zones()),  # REST-XML, a GET without a body
    ("ec2", lambda c: c.describe_vpcs()),  # EC2's query dialect
])
def test_unknown_service_is_refused_clearly_in_its_own_protocol(local, service, call):
    with pytest.raises(ClientError) as caught:
        call(local.client(service))
    assert caught.value.response["Error"]["Code"] == "NotImplemented"
    assert caught.value.response["Error"]["Message"] == \
        f"sagemaker-emu does not serve the AWS service '{service}' on this URL."
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_reset_empties_the_neighbours(local):
    local.client("s3").create_bucket(Bucket="gone-after-reset")
    local.client("sqs").create_queue(QueueName="gone")
    local.reset()
    assert local.client("s3").list_buckets()["Buckets"] == []
    assert local.client("sqs").list_queues().get("QueueUrls", []) == []


def test_s3_model_data_is_fetched_once_per_etag(local):
    s3, sm, rt = local.client("s3"), local.client(), local.client("sagemaker-runtime")
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="linear/model.tar.gz", Body=model_tarball())
    url = "s3://models/linear/model.tar.gz"
    cache = local._server.emulator.model_data
    deploy(sm, "linear", container={"Image": PYTORCH_IMAGE, "ModelDataUrl": url}, InitialInstanceCount=2)
    deploy(sm, "linear-2", [variant(model="linear-model")])  # a second endpoint of the same model
    assert predict(rt, "linear") == predict(rt, "linear-2") == [3.0, 5.0]
    assert cache.downloads == 1
    # a new upload is a new ETag: the next deployment fetches it
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(FIXTURES / "linear_model" / "code", arcname="code")
        weights = b'{"slope": 10, "intercept": 0}'
        info = tarfile.TarInfo("weights.json")
        info.size = len(weights)
        tar.addfile(info, io.BytesIO(weights))
    s3.put_object(Bucket="models", Key="linear/model.tar.gz", Body=buffer.getvalue())
    deploy(sm, "linear-3", [variant(model="linear-model")])
    assert predict(rt, "linear-3") == [10.0, 20.0] and cache.downloads == 2


def test_model_data_source_s3_prefix_uncompressed(local):
    s3, sm, rt = local.client("s3"), local.client(), local.client("sagemaker-runtime")
    s3.create_bucket(Bucket="models")
    for path in (FIXTURES / "linear_model").rglob("*"):
        if path.is_file():
            relative = path.relative_to(FIXTURES / "linear_model").as_posix()
            s3.put_object(Bucket="models", Key=f"linear/uncompressed/{relative}", Body=path.read_bytes())
    source = {"S3DataSource": {"S3Uri": "s3://models/linear/uncompressed/", "S3DataType": "S3Prefix",
                               "CompressionType": "None"}}
    deploy(sm, "prefix", container={"Image": PYTORCH_IMAGE, "ModelDataSource": source})
    assert predict(rt, "prefix") == [3.0, 5.0]


def test_s3_endpoint_points_at_a_second_process(tmp_path):
    """A real S3-compatible server in its own process (another emulator: moto's S3)."""
    with EmulatorProcess() as store:
        s3 = client(store.url, "s3")
        s3.create_bucket(Bucket="external")
        s3.put_object(Bucket="external", Key="model.tar.gz", Body=model_tarball())
        with EmulatorProcess("--s3-endpoint", store.url) as emulator:
            sm, rt = client(emulator.url), client(emulator.url, "sagemaker-runtime")
            deploy(sm, "ext", container={"Image": PYTORCH_IMAGE, "ModelDataUrl": "s3://external/model.tar.gz"})
            assert predict(rt, "ext") == [3.0, 5.0]
            with pytest.raises(ClientError) as caught:  # its own URL no longer plays S3
                client(emulator.url, "s3").list_buckets()
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_the_neighbours_live_in_the_emulators_account():
    with EmulatorServer(account="210987654321") as other:
        assert other.client("sts").get_caller_identity()["Account"] == "210987654321"
        topic = other.client("sns").create_topic(Name="t")["TopicArn"]
        assert topic == "arn:aws:sns:us-east-1:210987654321:t"

"""The async queue against fakes of its neighbours (the runtime, the directory, S3 and SNS),
with a clock the test moves: a request that waited past its RequestTTLSeconds fails unrun."""

import threading
from types import SimpleNamespace

from sagemaker_emu.metrics import Metrics
from sagemaker_emu.runtime.async_queue import EXPIRED, AsyncInvocations, AsyncRequest
from sagemaker_emu.runtime.request import InvokeResult

CONFIG = {"OutputConfig": {"S3OutputPath": "s3://b/out", "NotificationConfig": {"ErrorTopic": "arn:e",
                                                                                "SuccessTopic": "arn:s"}}}


class Fleet:
    def __init__(self, instances: int) -> None:
        self.count = instances

    def instances(self, variant):
        return [object()] * self.count


class Directory:
    def __init__(self, fleet) -> None:
        self.target = SimpleNamespace(name="ep", account="1", async_config=CONFIG, fleet=fleet,
                                      variants=[SimpleNamespace(name="v")])

    def serving(self, region, name, account=None):
        return self.target


class Results:
    def __init__(self) -> None:
        self.written, self.notified, self.done = {}, [], threading.Event()

    def download(self, url, path, max_bytes):
        path.write_bytes(b"from s3")
        return 7

    def write(self, url, body, content_type):
        self.written[url] = body

    def notify(self, topic, message):
        self.notified.append((topic, message))
        self.done.set()


class Runtime:
    def __init__(self) -> None:
        self.requests, self.bodies = [], []
        self.metrics = Metrics()  # no sink: the backlog samples go nowhere

    def invoke(self, req, answer_to=None):
        self.requests.append(req)
        self.bodies.append(req.body.path.read_bytes())  # the input, in a file the queue removes after
        return InvokeResult(body=b"answer", content_type="text/plain", variant="v")


def queue(tmp_path, instances=1):
    now = [1000.0]
    fleet, runtime, results = Fleet(instances), Runtime(), Results()
    asynchronous = AsyncInvocations(runtime, Directory(fleet), results, tmp_path, clock=lambda: now[0])
    return asynchronous, fleet, runtime, results, now


def test_a_request_past_its_ttl_fails_without_running(tmp_path):
    asynchronous, fleet, runtime, results, now = queue(tmp_path, instances=0)
    accepted = asynchronous.submit(AsyncRequest("ep", "us-east-1", body=b"x", inference_id="old", ttl_s=60))
    now[0] += 61  # the endpoint had no instance for longer than the TTL
    fleet.count = 1
    assert results.done.wait(10)
    assert runtime.requests == []
    topic, message = results.notified[0]
    assert topic == "arn:e" and message["failureReason"] == EXPIRED.format(ttl=60)
    assert accepted.failure_location in results.written
    asynchronous.reset()


def test_the_model_gets_the_input_and_its_timeout(tmp_path):
    asynchronous, _, runtime, results, _ = queue(tmp_path)
    accepted = asynchronous.submit(AsyncRequest("ep", "us-east-1", input_location="s3://b/in", timeout_s=7,
                                                content_type="text/plain"))
    assert results.done.wait(10)
    [req] = runtime.requests
    assert (runtime.bodies, req.timeout, req.content_type, req.inference_id) == ([b"from s3"], 7.0, "text/plain",
                                                                                accepted.inference_id)
    assert results.written[accepted.output_location] == b"answer"
    assert results.notified[0][1]["invocationStatus"] == "Completed"
    assert list(tmp_path.rglob("*.in")) == []  # the S3 input's copy is gone once the call ended
    asynchronous.reset()

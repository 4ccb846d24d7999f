"""The container-contract server with a scripted model (the model is the neighbour here)."""

import http.client
import threading

import pytest

from sagemaker_emu.worker.contract import Model, Reply
from sagemaker_emu.worker.server import ContainerServer


class GatedModel(Model):
    """Each invocation waits for the test to open its gate; counts how many run at once."""

    def __init__(self, concurrency):
        self.concurrency = concurrency
        self.running = 0
        self.peak = 0
        self.entered = threading.Semaphore(0)
        self.gate = threading.Semaphore(0)
        self.lock = threading.Lock()

    def healthy(self):
        return True

    def invoke(self, invocation):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.entered.release()
        self.gate.acquire()
        with self.lock:
            self.running -= 1
        return Reply(body=invocation.body, content_type="text/plain", custom_attributes="seen")


@pytest.fixture
def serve():
    servers = []

    def start(model):
        srv = ContainerServer(("127.0.0.1", 0), model)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv.server_address[1]

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def post(port, body, results):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/invocations", body=body, headers={"Content-Type": "text/plain"})
    resp = conn.getresponse()
    results.append((resp.status, resp.read(), resp.getheader("X-Amzn-SageMaker-Custom-Attributes")))
    conn.close()


def test_model_server_workers_bound_concurrency(serve):
    model = GatedModel(concurrency=1)
    port = serve(model)
    results = []
    clients = [threading.Thread(target=post, args=(port, f"r{i}".encode(), results)) for i in range(3)]
    for c in clients:
        c.start()
    assert model.entered.acquire(timeout=5)
    assert not model.entered.acquire(timeout=0.2)  # the others wait in the instance's queue
    for _ in range(3):
        model.gate.release()
    for c in clients:
        c.join(5)
    assert model.peak == 1
    assert sorted(r[1] for r in results) == [b"r0", b"r1", b"r2"]
    assert all(r[0] == 200 and r[2] == "seen" for r in results)


def test_ping_and_unknown_paths(serve):
    port = serve(GatedModel(concurrency=None))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/ping")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.read() == b""
    conn.request("GET", "/nope")  # same keep-alive connection
    assert conn.getresponse().status == 404


class NamedModel(Model):
    """A model that answers with the directory it was loaded from."""

    def __init__(self, model_dir):
        if model_dir.name == "too-big":
            raise MemoryError()
        if model_dir.name == "broken":
            raise ValueError("bad weights")
        self.model_dir = model_dir

    def invoke(self, invocation):
        return Reply(body=str(self.model_dir).encode(), content_type="text/plain")


def test_multi_model_contract(serve):
    """SageMaker's multi-model container contract: load, list, get, invoke, unload, and the
    statuses it documents (409 for a name already loaded, 507 when there is no room)."""
    import json

    from sagemaker_emu.worker.multi_model import MultiModel

    port = serve(MultiModel(NamedModel, concurrency=2))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def call(method, path, body=None):
        conn.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body)
        resp = conn.getresponse()
        return resp.status, resp.read()

    assert call("POST", "/models", {"model_name": "m1", "url": "/models/one"})[0] == 200
    assert call("POST", "/models", {"model_name": "m1", "url": "/models/one"})[0] == 409
    assert call("POST", "/models", {"model_name": "m2", "url": "/models/too-big"})[0] == 507
    status, body = call("POST", "/models", {"model_name": "m3", "url": "/models/broken"})
    assert status == 500 and b"ValueError: bad weights" in body
    assert call("POST", "/models", b"not json")[0] == 400
    assert json.loads(call("GET", "/models")[1]) == {"models": [{"modelName": "m1", "modelUrl": "/models/one"}]}
    assert json.loads(call("GET", "/models/m1")[1]) == {"modelName": "m1", "modelUrl": "/models/one"}
    assert call("POST", "/models/m1/invoke", b"x") == (200, b"/models/one")
    assert call("POST", "/models/m2/invoke", b"x")[0] == 404
    assert call("POST", "/invocations", b"x")[0] == 404  # no model named: nothing to run
    assert call("DELETE", "/models/m1")[0] == 200
    assert call("DELETE", "/models/m1")[0] == 404
    assert call("GET", "/models/m1")[0] == 404

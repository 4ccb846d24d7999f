"""Instances as processes: crashes, restarts, scaling, updates under load, and no orphans."""

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import EmulatorProcess, client, deploy, variant

ONE_POLL = {"MaxAttempts": 1}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped between the two looks
        return False


def eventually(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Poll an observable condition (bounded); the tests never sleep to synchronise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def instances(server, name):
    return [i for v in server.endpoint_view(name)["variants"] for i in v["instances"]]


def test_introspection_lists_instances(server, sm, rt):
    deploy(sm, "ep1", variants=[variant(InitialInstanceCount=3)])
    rt.invoke_endpoint(EndpointName="ep1", Body=b"x")
    view = server.endpoint_view("ep1")
    assert view["status"] == "InService"
    (v,) = view["variants"]
    assert v["name"] == "AllTraffic" and v["routing_strategy"] == "RANDOM"
    assert len(v["instances"]) == 3
    assert len({i["pid"] for i in v["instances"]}) == 3 and len({i["port"] for i in v["instances"]}) == 3
    assert all(i["health"] == "Healthy" and i["in_flight"] == 0 for i in v["instances"])
    assert sum(i["served"] for i in v["instances"]) == 1
    status, _, body = server.post(f"/_emu/endpoints/ep1/instances/{v['instances'][0]['id']}/logs", method="GET")
    assert status == 200 and b"serving echo" in body


def test_killed_instance_restarts_and_endpoint_keeps_serving(server, sm, rt):
    deploy(sm, "ep1", variants=[variant(InitialInstanceCount=2)])
    victim = instances(server, "ep1")[0]
    os.kill(victim["pid"], signal.SIGKILL)
    # A call racing the crash itself may fail, as on AWS (a dying process still accepts
    # connections while its threads exit). Once the emulator has seen the crash, none may.
    eventually(lambda: any(i["id"] == victim["id"] and (i["health"] != "Healthy" or i["restarts"])
                           for i in instances(server, "ep1")))
    for _ in range(20):
        assert rt.invoke_endpoint(EndpointName="ep1", Body=b"x")["Body"].read() == b"x"
    back = eventually(lambda: next((i for i in instances(server, "ep1")
                                    if i["id"] == victim["id"] and i["health"] == "Healthy" and i["restarts"] == 1), None))
    assert back["pid"] != victim["pid"] and alive(back["pid"]) and not alive(victim["pid"])
    assert sm.describe_endpoint(EndpointName="ep1")["EndpointStatus"] == "InService"


def test_scale_out_and_in(server, sm, rt):
    deploy(sm, "ep1", variants=[variant(InitialInstanceCount=1)])
    sm.update_endpoint_weights_and_capacities(EndpointName="ep1", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 3}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    grown = instances(server, "ep1")
    assert len(grown) == 3 and all(i["health"] == "Healthy" for i in grown)
    sm.update_endpoint_weights_and_capacities(EndpointName="ep1", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 1}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    shrunk = instances(server, "ep1")
    assert len(shrunk) == 1
    gone = [i["pid"] for i in grown if i["pid"] != shrunk[0]["pid"]]
    eventually(lambda: not any(alive(pid) for pid in gone))
    assert sm.describe_endpoint(EndpointName="ep1")["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert rt.invoke_endpoint(EndpointName="ep1", Body=b"x")["Body"].read() == b"x"


def test_update_endpoint_under_load_fails_no_call(server, sm, rt):
    deploy(sm, "ep1", variants=[variant("old", model="m-old", InitialInstanceCount=2)])
    old_pids = [i["pid"] for i in instances(server, "ep1")]
    sm.create_model(ModelName="m-new", PrimaryContainer={"Image": "sagemaker-emu/echo",
                                                         "Environment": {"ECHO_LATENCY_MS": "5"}})
    sm.create_endpoint_config(EndpointConfigName="c-new", ProductionVariants=[variant("new", model="m-new")])
    results, errors, stop = [], [], threading.Event()

    def load():
        while not stop.is_set() and len(results) < 2000:
            try:
                results.append(rt.invoke_endpoint(EndpointName="ep1", Body=b"x")["InvokedProductionVariant"])
            except ClientError as exc:  # pragma: no cover - this is what the test is about
                errors.append(exc)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    eventually(lambda: len(results) > 20)
    sm.update_endpoint(EndpointName="ep1", EndpointConfigName="c-new")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    count_at_switch = len(results)
    eventually(lambda: len(results) > count_at_switch + 20)
    stop.set()
    for w in workers:
        w.join()
    assert errors == []
    assert results[0] == "old" and results[-1] == "new"
    eventually(lambda: not any(alive(pid) for pid in old_pids))


def test_delete_endpoint_stops_every_process(server, sm):
    deploy(sm, "ep1", variants=[variant("a", model="m1", InitialInstanceCount=2), variant("b", model="m1")])
    pids = [i["pid"] for i in instances(server, "ep1")]
    assert len(pids) == 3 and all(alive(p) for p in pids)
    sm.delete_endpoint(EndpointName="ep1")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    assert not any(alive(p) for p in pids)


def test_reset_stops_every_process(server, sm):
    deploy(sm, "ep1", variants=[variant(InitialInstanceCount=2)])
    pids = [i["pid"] for i in instances(server, "ep1")]
    server.reset()
    assert not any(alive(p) for p in pids)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the worker template among the emulator's)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # noqa: PERF203 - a process that ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("start", ["fork", "exec"])
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["shutdown", "server-killed"])
def test_no_orphans_when_the_server_goes(how, start):
    srv = EmulatorProcess("--worker-start", start)
    try:
        sm = client(srv.url)
        deploy(sm, "ep1", variants=[variant(InitialInstanceCount=2)])
        pids = [i["pid"] for i in instances(srv, "ep1")] + children(srv.proc.pid)  # with the template
        assert all(alive(p) for p in pids) and len(set(pids)) == (3 if start == "fork" else 2)
        srv.proc.send_signal(how)
        srv.proc.wait(timeout=30)
        # On SIGKILL nobody stops the workers: each notices its parent is gone.
        eventually(lambda: not any(alive(p) for p in pids), timeout=10)
    finally:
        srv.stop()


def test_a_killed_worker_template_takes_its_workers_and_the_fleet_replaces_them():
    srv = EmulatorProcess()
    try:
        sm, rt = client(srv.url), client(srv.url, "sagemaker-runtime")
        deploy(sm, "ep1", variants=[variant(InitialInstanceCount=2)])
        before = [i["pid"] for i in instances(srv, "ep1")]
        (template,) = children(srv.proc.pid)
        os.kill(template, signal.SIGKILL)
        eventually(lambda: not any(alive(p) for p in before), timeout=10)  # they die with it
        eventually(lambda: [i["restarts"] for i in instances(srv, "ep1")] == [1, 1] and
                   all(i["health"] == "Healthy" for i in instances(srv, "ep1")), timeout=30)
        after = [i["pid"] for i in instances(srv, "ep1")]
        assert all(alive(p) for p in after) and not set(after) & set(before)
        assert children(srv.proc.pid) != [template]  # a new template forked them
        assert rt.invoke_endpoint(EndpointName="ep1", Body=b"x")["Body"].read() == b"x"
    finally:
        srv.stop()


def test_slow_model_times_out_and_frees_the_instance():
    srv = EmulatorProcess("--model-timeout", "0.5")
    try:
        sm, rt = client(srv.url), client(srv.url, "sagemaker-runtime")
        deploy(sm, "slow", environment={"ECHO_LATENCY_MS": "3000"})
        with pytest.raises(ClientError) as info:
            rt.invoke_endpoint(EndpointName="slow", Body=b"x")
        err = info.value.response
        assert err["Error"]["Code"] == "ModelError" and err["OriginalStatusCode"] == 0
        assert "Your invocation timed out while waiting for a response from container primary." in err["Error"]["Message"]
        (inst,) = instances(srv, "slow")
        assert inst["in_flight"] == 0 and inst["errors"] == 1
    finally:
        srv.stop()


def test_failed_scale_out_returns_to_in_service_with_a_reason(server, sm, tmp_path):
    # The model's code is read at each instance's start: break it after the first one is up.
    code = tmp_path / "model" / "code"
    code.mkdir(parents=True)
    (code / "inference.py").write_text("def model_fn(model_dir):\n    return None\n")
    sm.create_model(ModelName="m1", PrimaryContainer={"Image": "my/framework:1",
                                                      "ModelDataUrl": (tmp_path / "model").as_uri()})
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant(model="m1")])
    sm.create_endpoint(EndpointName="ep1", EndpointConfigName="c1")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    (code / "inference.py").write_text("def model_fn(model_dir):\n    raise RuntimeError('cannot load now')\n")
    sm.update_endpoint_weights_and_capacities(EndpointName="ep1", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredInstanceCount": 2}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    ep = sm.describe_endpoint(EndpointName="ep1")
    assert ep["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert "cannot load now" in ep["FailureReason"]
    assert [i["health"] for i in instances(server, "ep1")] == ["Healthy"]


def test_a_worker_whose_port_was_taken_is_started_on_another(monkeypatch):
    """The fleet picks a free port and the worker binds it a moment later; another socket may
    take it in between. The worker says so by its exit code and the fleet tries a new port."""
    import socket

    from sagemaker_emu.fleet import spawn
    from sagemaker_emu.testing import EmulatorServer

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    taken_port = taken.getsockname()[1]
    real_free_port = spawn.free_port
    handed = []

    def first_taken() -> int:
        handed.append(real_free_port() if handed else taken_port)
        return handed[-1]

    monkeypatch.setattr(spawn, "free_port", first_taken)
    try:
        with EmulatorServer(port=0) as emu:
            deploy(emu.client(), "port")
            out = emu.client("sagemaker-runtime").invoke_endpoint(EndpointName="port", Body=b"ok")
            assert out["Body"].read() == b"ok"
    finally:
        taken.close()
    assert handed[0] == taken_port and len(handed) == 2  # one retry, on a port of its own

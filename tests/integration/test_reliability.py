"""Issue 11 items 5, 6 and 7: hung instances, replays, quotas and fleets still starting.

Real server, real workers; the tests wait on what the emulator or a worker reports (a view,
a ledger file), never on a sleep.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import EmulatorProcess, client, deploy, variant
from tests.integration.test_fleet import alive, eventually, instances

LEDGER_MODEL = (Path(__file__).parent.parent / "fixtures" / "ledger_model").resolve()


def ledger_endpoint(sm, name: str, tmp_path: Path, count: int, **env) -> tuple[Path, Path]:
    ledger, gate = tmp_path / "ledger", tmp_path / "gate"
    sm.create_model(ModelName=name, PrimaryContainer={
        "Image": "my/framework:1", "ModelDataUrl": LEDGER_MODEL.as_uri(),
        "Environment": {"LEDGER": str(ledger), "GATE": str(gate), "SAGEMAKER_MODEL_SERVER_WORKERS": "16", **env}})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant(model=name, InitialInstanceCount=count)])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return ledger, gate


def lines(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]


def test_calls_in_flight_on_a_killed_instance_fail_and_are_never_replayed(server, sm, tmp_path):
    ledger, gate = ledger_endpoint(sm, "ledger", tmp_path, count=2)
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ledger", WaiterConfig={"Delay": 1})
    rt = client(server.url, "sagemaker-runtime", max_pool_connections=32)
    gate.touch()  # first fill the emulator's pools with kept-alive connections to both instances
    calls = [threading.Thread(target=rt.invoke_endpoint, kwargs={"EndpointName": "ledger", "Body": f"warm-{i}"})
             for i in range(16)]
    for t in calls:
        t.start()
    for t in calls:
        t.join()
    gate.unlink()
    ledger.unlink()

    outcomes: dict[str, str] = {}

    def call(body: str) -> None:
        try:
            outcomes[body] = rt.invoke_endpoint(EndpointName="ledger", Body=body)["Body"].read().decode()
        except ClientError as exc:
            outcomes[body] = exc.response["Error"]["Code"]

    bodies = [f"req-{i}" for i in range(8)]
    calls = [threading.Thread(target=call, args=(b,)) for b in bodies]
    for t in calls:
        t.start()
    eventually(lambda: len(lines(ledger)) == len(bodies))  # all eight are in flight
    victim = int(Counter(pid for pid, _ in lines(ledger)).most_common(1)[0][0])
    os.kill(victim, signal.SIGKILL)
    eventually(lambda: any(i["restarts"] or i["health"] != "Healthy" for i in instances(server, "ledger")))
    gate.touch()
    for t in calls:
        t.join()

    ran = Counter(body for _, body in lines(ledger))
    assert all(ran[b] == 1 for b in bodies), ran  # before: each call on the victim ran again elsewhere
    on_victim = {body for pid, body in lines(ledger) if int(pid) == victim}
    assert {b for b in bodies if outcomes[b] == "ModelError"} == on_victim
    assert all(outcomes[b] == b for b in bodies if b not in on_victim)


@pytest.fixture
def checked():
    srv = EmulatorProcess("--health-interval", "0.1", "--health-failures", "2")
    yield srv
    srv.stop()


def test_a_hung_instance_leaves_routing_and_is_replaced(checked):
    sm, rt = client(checked.url), client(checked.url, "sagemaker-runtime")
    deploy(sm, "ep1", variants=[variant(InitialInstanceCount=2)])
    hung = instances(checked, "ep1")[0]
    os.kill(hung["pid"], signal.SIGSTOP)  # alive, never answers: before, it stayed routable for ever
    try:
        replaced = eventually(lambda: next((i for i in instances(checked, "ep1")
                                            if i["id"] == hung["id"] and i["restarts"] == 1
                                            and i["health"] == "Healthy"), None), timeout=30)
        assert replaced["pid"] != hung["pid"] and not alive(hung["pid"])
        for _ in range(10):
            assert rt.invoke_endpoint(EndpointName="ep1", Body=b"x")["Body"].read() == b"x"
        assert "failed 2 health checks in a row; replacing it" in checked.logs()
    finally:
        if alive(hung["pid"]):
            os.kill(hung["pid"], signal.SIGKILL)


def test_instance_counts_past_the_quota_are_refused(server, sm):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_endpoint_config(EndpointConfigName="huge", ProductionVariants=[variant(model="m", InitialInstanceCount=1000000)])
    with pytest.raises(ClientError) as err:
        sm.create_endpoint(EndpointName="huge", EndpointConfigName="huge")
    assert err.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert err.value.response["Error"]["Message"].startswith(
        "The account-level service limit 'Number of instances across active endpoints' is 64 Instances, "
        "with current utilization of 0 Instances and a request delta of 1000000 Instances.")
    with pytest.raises(ClientError):
        sm.describe_endpoint(EndpointName="huge")  # nothing was created
    deploy(sm, "ep1", variants=[variant(model="m-ep1")])
    with pytest.raises(ClientError) as err:
        sm.update_endpoint_weights_and_capacities(EndpointName="ep1", DesiredWeightsAndCapacities=[
            {"VariantName": "AllTraffic", "DesiredInstanceCount": 65}])
    assert err.value.response["Error"]["Code"] == "ResourceLimitExceeded"
    assert "current utilization of 1 Instances and a request delta of 64 Instances" in err.value.response["Error"]["Message"]
    assert sm.describe_endpoint(EndpointName="ep1")["EndpointStatus"] == "InService"


def test_a_per_type_quota(tmp_path):
    srv = EmulatorProcess("--quota", "ml.g5.xlarge=2", "--quota", "total=3")
    try:
        sm = client(srv.url)
        sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
        sm.create_endpoint_config(EndpointConfigName="g5", ProductionVariants=[
            variant(model="m", InstanceType="ml.g5.xlarge", InitialInstanceCount=3)])
        with pytest.raises(ClientError) as err:
            sm.create_endpoint(EndpointName="g5", EndpointConfigName="g5")
        assert "'ml.g5.xlarge for endpoint usage' is 2 Instances" in err.value.response["Error"]["Message"]
    finally:
        srv.stop()


def test_reset_stops_a_fleet_that_is_still_starting(server, sm, tmp_path):
    start_gate = tmp_path / "never"
    ledger, _ = ledger_endpoint(sm, "slow", tmp_path, count=1, START_GATE=str(start_gate))
    pid = int(eventually(lambda: lines(ledger))[0][0])  # model_fn is running and waiting
    assert sm.describe_endpoint(EndpointName="slow")["EndpointStatus"] == "Creating"
    server.reset()
    eventually(lambda: not alive(pid))  # before: it ran on until the 240-s startup timeout


def test_delete_is_refused_while_creating_as_on_aws(server, sm, tmp_path):
    ledger, _ = ledger_endpoint(sm, "slow", tmp_path, count=1, START_GATE=str(tmp_path / "never"))
    eventually(lambda: lines(ledger))
    with pytest.raises(ClientError) as err:
        sm.delete_endpoint(EndpointName="slow")
    assert "Cannot delete in-progress endpoint" in err.value.response["Error"]["Message"]


def test_a_deleted_endpoint_leaves_no_metrics_sessions_or_files(tmp_path):
    """Item 11: each create/delete cycle used to leave its metric series and its state files."""
    srv = EmulatorProcess("--state-dir", str(tmp_path / "state"))
    try:
        sm, rt = client(srv.url), client(srv.url, "sagemaker-runtime")
        for cycle in range(3):
            deploy(sm, f"cycle{cycle}")
            rt.invoke_endpoint(EndpointName=f"cycle{cycle}", Body=b"x")
            with pytest.raises(ClientError):
                rt.invoke_endpoint(EndpointName=f"cycle{cycle}", Body=b"x", TargetVariant="nope")
            assert f'endpoint="cycle{cycle}"' in srv.post("/_emu/metrics", method="GET")[2].decode()
            sm.delete_endpoint(EndpointName=f"cycle{cycle}")
            sm.get_waiter("endpoint_deleted").wait(EndpointName=f"cycle{cycle}", WaiterConfig={"Delay": 1})
        for name in (f"nobody-{i}" for i in range(20)):  # names that match nothing are not series either
            with pytest.raises(ClientError):
                rt.invoke_endpoint(EndpointName=name, Body=b"x")
        metrics = srv.post("/_emu/metrics", method="GET")[2].decode()
        assert "cycle" not in metrics and "nobody" not in metrics
        assert list((tmp_path / "state").iterdir()) == []
    finally:
        srv.stop()

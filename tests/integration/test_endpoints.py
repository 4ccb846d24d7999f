"""Endpoint lifecycle through boto3: Creating -> InService, Updating, Deleting, waiters."""

import pytest
from botocore.exceptions import ClientError, WaiterError

from sagemaker_emu.testing import ECHO_IMAGE as IMAGE, deploy, variant

ACCOUNT = "123456789012"
SLOW = {"SAGEMAKER_EMU_STARTUP_DELAY": "1"}  # instances of this model take 1 s to pass /ping
ONE_POLL = {"MaxAttempts": 1}  # a waiter that fails unless its first poll already succeeds


def error(info):
    return info.value.response["Error"]


def test_create_shows_creating_then_the_waiter_returns_on_its_first_poll(sm):
    deploy(sm, "ep1", environment=SLOW, wait=False)
    described = sm.describe_endpoint(EndpointName="ep1")
    assert described["EndpointStatus"] == "Creating"
    assert "ProductionVariants" not in described
    pending = described["PendingDeploymentSummary"]
    assert pending["EndpointConfigName"] == "ep1-config"
    assert pending["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert pending["ProductionVariants"][0]["VariantStatus"][0]["Status"] == "Creating"
    # Default delay is 30 s; the first poll is held until the endpoint is InService.
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    assert sm.describe_endpoint(EndpointName="ep1")["EndpointStatus"] == "InService"


def test_describe_in_service_endpoint(sm):
    deploy(sm, "ep1", variants=[
        variant("a", model="m-a", InitialInstanceCount=2, InitialVariantWeight=3,
                RoutingConfig={"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}),
        variant("b", model="m-b"),
    ])
    ep = sm.describe_endpoint(EndpointName="ep1")
    assert ep["EndpointArn"] == f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ep1"
    assert ep["EndpointConfigName"] == "ep1-config"
    assert ep["EndpointStatus"] == "InService"
    assert "PendingDeploymentSummary" not in ep and "FailureReason" not in ep
    assert ep["LastModifiedTime"] >= ep["CreationTime"]
    a, b = ep["ProductionVariants"]
    assert a["VariantName"] == "a"
    assert (a["CurrentWeight"], a["DesiredWeight"], a["CurrentInstanceCount"], a["DesiredInstanceCount"]) == (3.0, 3.0, 2, 2)
    assert isinstance(a["CurrentWeight"], float)
    assert a["RoutingConfig"] == {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}
    assert "RoutingConfig" not in b
    image = a["DeployedImages"][0]
    assert image["SpecifiedImage"] == IMAGE and image["ResolvedImage"].startswith(IMAGE + "@sha256:")


def test_create_needs_existing_config_and_models(sm):
    with pytest.raises(ClientError) as info:
        sm.create_endpoint(EndpointName="ep1", EndpointConfigName="missing")
    assert error(info)["Message"] == (
        f'Could not find endpoint configuration "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint-config/missing".')
    sm.create_model(ModelName="m1", PrimaryContainer={"Image": IMAGE})
    sm.create_endpoint_config(EndpointConfigName="c1", ProductionVariants=[variant()])
    sm.delete_model(ModelName="m1")
    with pytest.raises(ClientError) as info:
        sm.create_endpoint(EndpointName="ep1", EndpointConfigName="c1")
    assert error(info)["Message"] == f'Could not find model "arn:aws:sagemaker:us-east-1:{ACCOUNT}:model/m1".'
    assert sm.list_endpoints()["Endpoints"] == []


def test_duplicate_endpoint(sm):
    deploy(sm, "ep1")
    with pytest.raises(ClientError) as info:
        sm.create_endpoint(EndpointName="EP1", EndpointConfigName="ep1-config")
    assert error(info)["Message"] == f'Cannot create already existing endpoint "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/EP1".'


def test_missing_endpoint_errors_and_waiters(sm):
    with pytest.raises(ClientError) as info:
        sm.describe_endpoint(EndpointName="ghost")
    assert error(info) == {"Code": "ValidationException",
                           "Message": f'Could not find endpoint "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ghost".'}
    with pytest.raises(WaiterError) as winfo:
        sm.get_waiter("endpoint_in_service").wait(EndpointName="ghost", WaiterConfig=ONE_POLL)
    assert "Matched expected service error code: ValidationException" in str(winfo.value)
    sm.get_waiter("endpoint_deleted").wait(EndpointName="ghost", WaiterConfig=ONE_POLL)


def test_delete_and_endpoint_deleted_waiter(sm):
    deploy(sm, "ep1")
    sm.delete_endpoint(EndpointName="ep1")
    sm.get_waiter("endpoint_deleted").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    assert sm.list_endpoints()["Endpoints"] == []
    with pytest.raises(ClientError):
        sm.delete_endpoint(EndpointName="ep1")


def test_delete_is_refused_while_creating(sm):
    deploy(sm, "ep1", environment=SLOW, wait=False)
    with pytest.raises(ClientError) as info:
        sm.delete_endpoint(EndpointName="ep1")
    assert error(info)["Message"] == f'Cannot delete in-progress endpoint "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ep1".'
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    sm.delete_endpoint(EndpointName="ep1")


def test_update_endpoint_keeps_the_old_config_serving_until_the_new_is_ready(sm):
    deploy(sm, "ep1")
    sm.create_model(ModelName="m2", PrimaryContainer={"Image": IMAGE, "Environment": SLOW})
    sm.create_endpoint_config(EndpointConfigName="c2", ProductionVariants=[variant("v2", model="m2", InitialInstanceCount=3)])
    assert sm.update_endpoint(EndpointName="ep1", EndpointConfigName="c2")["EndpointArn"].endswith(":endpoint/ep1")
    during = sm.describe_endpoint(EndpointName="ep1")
    assert during["EndpointStatus"] == "Updating"
    assert during["EndpointConfigName"] == "ep1-config"
    assert [v["VariantName"] for v in during["ProductionVariants"]] == ["AllTraffic"]
    assert during["PendingDeploymentSummary"]["EndpointConfigName"] == "c2"
    with pytest.raises(ClientError) as info:
        sm.update_endpoint(EndpointName="ep1", EndpointConfigName="c2")
    assert error(info)["Message"] == f'Cannot update in-progress endpoint "arn:aws:sagemaker:us-east-1:{ACCOUNT}:endpoint/ep1".'
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    after = sm.describe_endpoint(EndpointName="ep1")
    assert after["EndpointConfigName"] == "c2"
    assert [(v["VariantName"], v["CurrentInstanceCount"]) for v in after["ProductionVariants"]] == [("v2", 3)]
    assert after["LastModifiedTime"] > during["CreationTime"]


def test_update_endpoint_can_retain_variant_properties(sm):
    deploy(sm, "ep1", variants=[variant("v", model="m1", InitialInstanceCount=1)])
    sm.update_endpoint_weights_and_capacities(EndpointName="ep1", DesiredWeightsAndCapacities=[
        {"VariantName": "v", "DesiredInstanceCount": 4, "DesiredWeight": 2.0}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    sm.create_endpoint_config(EndpointConfigName="c2", ProductionVariants=[variant("v", model="m1", InitialInstanceCount=1)])
    sm.update_endpoint(EndpointName="ep1", EndpointConfigName="c2", RetainAllVariantProperties=True,
                       ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DesiredWeight"}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    v = sm.describe_endpoint(EndpointName="ep1")["ProductionVariants"][0]
    assert (v["CurrentInstanceCount"], v["CurrentWeight"]) == (4, 1.0)


def test_update_needs_an_existing_config(sm):
    deploy(sm, "ep1")
    with pytest.raises(ClientError) as info:
        sm.update_endpoint(EndpointName="ep1", EndpointConfigName="nope")
    assert "Could not find endpoint configuration" in error(info)["Message"]
    assert sm.describe_endpoint(EndpointName="ep1")["EndpointStatus"] == "InService"


def test_weights_and_capacities(sm):
    deploy(sm, "ep1", variants=[variant("a", model="m1"), variant("b", model="m1")])
    sm.update_endpoint_weights_and_capacities(EndpointName="ep1", DesiredWeightsAndCapacities=[
        {"VariantName": "a", "DesiredWeight": 0.25}, {"VariantName": "b", "DesiredInstanceCount": 3}])
    sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
    a, b = sm.describe_endpoint(EndpointName="ep1")["ProductionVariants"]
    assert (a["CurrentWeight"], a["CurrentInstanceCount"]) == (0.25, 1)
    assert (b["CurrentWeight"], b["CurrentInstanceCount"], b["DesiredInstanceCount"]) == (1.0, 3, 3)


@pytest.mark.parametrize(
    "desired,message",
    [
        ([{"VariantName": "zzz", "DesiredWeight": 1.0}],
         'The variant name(s) "zzz" is/are not present within endpoint configuration "ep1-config".'),
        ([{"VariantName": "a", "DesiredWeight": 1.0}, {"VariantName": "a", "DesiredWeight": 2.0}],
         'The variant name "a" was non-unique within the request.'),
        ([{"VariantName": "a", "DesiredWeight": 0.0}], "The sum of the variant weights must be greater than 0."),
        ([{"VariantName": "a", "DesiredInstanceCount": 0}],
         'DesiredInstanceCount for variant "a" must be greater than 0 on an endpoint without inference components.'),
        ([{"VariantName": "a"}], 'Specify DesiredWeight, DesiredInstanceCount or ServerlessUpdateConfig for variant "a".'),
    ],
)
def test_weights_and_capacities_errors(sm, desired, message):
    deploy(sm, "ep1", variants=[variant("a", model="m1")])
    with pytest.raises(ClientError) as info:
        sm.update_endpoint_weights_and_capacities(EndpointName="ep1", DesiredWeightsAndCapacities=desired)
    assert error(info) == {"Code": "ValidationException", "Message": message}
    assert sm.describe_endpoint(EndpointName="ep1")["EndpointStatus"] == "InService"


def test_waiter_hold_can_be_turned_off(tmp_path):
    from sagemaker_emu.testing import EmulatorProcess, client

    srv = EmulatorProcess("--waiter-hold", "0")
    try:
        sm = client(srv.url)
        deploy(sm, "ep1", environment={"SAGEMAKER_EMU_STARTUP_DELAY": "5"}, wait=False)
        with pytest.raises(WaiterError) as info:
            sm.get_waiter("endpoint_in_service").wait(EndpointName="ep1", WaiterConfig=ONE_POLL)
        assert "Max attempts exceeded" in str(info.value)
    finally:
        srv.stop()


def test_min_transition_seconds_keeps_statuses_as_long_as_asked():
    """Item 14: transitions took ~20 ms, so code that forgot a waiter passed locally."""
    from sagemaker_emu.testing import EmulatorProcess, client

    srv = EmulatorProcess("--min-transition-seconds", "3")
    try:
        sm = client(srv.url)
        deploy(sm, "slow", wait=False)
        assert sm.describe_endpoint(EndpointName="slow")["EndpointStatus"] == "Creating"
        sm.get_waiter("endpoint_in_service").wait(EndpointName="slow", WaiterConfig={"Delay": 1, "MaxAttempts": 10})
        sm.delete_endpoint(EndpointName="slow")
        assert sm.describe_endpoint(EndpointName="slow")["EndpointStatus"] == "Deleting"
    finally:
        srv.stop()


def test_desired_values_show_while_weights_and_capacities_change(server, sm, tmp_path):
    """Item 14: during UpdateEndpointWeightsAndCapacities, Desired* show the new values."""
    from tests.integration.test_fleet import eventually
    from tests.integration.test_reliability import ledger_endpoint, lines

    start_gate = tmp_path / "start"
    start_gate.touch()
    ledger, _ = ledger_endpoint(sm, "grow", tmp_path, count=1, START_GATE=str(start_gate))
    sm.get_waiter("endpoint_in_service").wait(EndpointName="grow", WaiterConfig={"Delay": 1})
    start_gate.unlink()  # the next instance waits in model_fn: the update stays in progress
    sm.update_endpoint_weights_and_capacities(EndpointName="grow", DesiredWeightsAndCapacities=[
        {"VariantName": "AllTraffic", "DesiredWeight": 3.0, "DesiredInstanceCount": 2}])
    eventually(lambda: len(lines(ledger)) == 2)
    (summary,) = sm.describe_endpoint(EndpointName="grow")["ProductionVariants"]
    assert summary["VariantStatus"][0]["Status"] == "Updating"
    assert (summary["DesiredWeight"], summary["DesiredInstanceCount"]) == (3.0, 2)
    assert (summary["CurrentWeight"], summary["CurrentInstanceCount"]) == (1.0, 1)
    start_gate.touch()
    sm.get_waiter("endpoint_in_service").wait(EndpointName="grow", WaiterConfig={"Delay": 1})
    (summary,) = sm.describe_endpoint(EndpointName="grow")["ProductionVariants"]
    assert (summary["CurrentWeight"], summary["CurrentInstanceCount"]) == (3.0, 2)


def test_managed_instance_scaling_is_echoed(server, sm):
    scaling = {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 3}
    deploy(sm, "mis", variants=[variant(model="mis-model", ManagedInstanceScaling=scaling)])
    assert sm.describe_endpoint(EndpointName="mis")["ProductionVariants"][0]["ManagedInstanceScaling"] == scaling


def test_serverless_memory_is_whole_gigabytes(server, sm):
    sm.create_model(ModelName="sl", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    with pytest.raises(ClientError) as err:
        sm.create_endpoint_config(EndpointConfigName="sl", ProductionVariants=[{
            "VariantName": "v", "ModelName": "sl", "ServerlessConfig": {"MemorySizeInMB": 1111, "MaxConcurrency": 1}}])
    assert "MemorySizeInMB must be 1024, 2048" in err.value.response["Error"]["Message"]

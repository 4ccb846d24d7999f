"""Inference components through boto3: endpoints without models, copies as processes placed by
compute requirements, invocations routed among an IC's copies, copy counts, deletion."""

import json
import threading

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import EmulatorProcess, client
from tests.integration.test_fleet import alive, eventually

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
LLM_ENV = {"LLM_SIM_PREFILL_BASE_MS": "0", "LLM_SIM_PREFILL_MS_PER_TOKEN": "0", "LLM_SIM_DECODE_MS_PER_TOKEN": "10"}


def ic_endpoint(sm, name: str, instance_type: str = "ml.g5.12xlarge", count: int = 1,
                strategy: str = "LEAST_OUTSTANDING_REQUESTS") -> None:
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ExecutionRoleArn=ROLE, ProductionVariants=[{
        "VariantName": "AllTraffic", "InstanceType": instance_type, "InitialInstanceCount": count,
        "RoutingConfig": {"RoutingStrategy": strategy}}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def settled(sm, name: str) -> dict:
    """DescribeInferenceComponent once it is no longer Creating, Updating or Deleting."""
    return eventually(lambda: (lambda d: d if d["InferenceComponentStatus"] in ("InService", "Failed") else None)(
        sm.describe_inference_component(InferenceComponentName=name)), timeout=60)


def component(sm, name: str, endpoint: str, model: str, copies: int, gpus: float = 1, memory: int = 1024) -> dict:
    sm.create_inference_component(
        InferenceComponentName=name, EndpointName=endpoint, VariantName="AllTraffic",
        Specification={"ModelName": model, "ComputeResourceRequirements": {
            "NumberOfAcceleratorDevicesRequired": gpus, "MinMemoryRequiredInMb": memory}},
        RuntimeConfig={"CopyCount": copies})
    return settled(sm, name)


def copies(server, endpoint: str, name: str) -> list[dict]:
    return server.endpoint_view(endpoint)["inference_components"][name]["copies"]


def error(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def test_the_workshop_flow_two_components_copies_scaling_and_deletion(server, sm, rt):
    sm.create_model(ModelName="echo-model", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_model(ModelName="llm-model", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": LLM_ENV})
    ic_endpoint(sm, "ics")
    assert error(lambda: rt.invoke_endpoint(EndpointName="ics", Body=b"x")) == (
        "ValidationError", "Inference Component Name header is required for endpoints to which you plan to deploy "
        "inference components. Please include Inference Component Name header or consider using SageMaker models.")

    echo = component(sm, "ic-echo", "ics", "echo-model", copies=2)
    llm = component(sm, "ic-llm", "ics", "llm-model", copies=1, gpus=2)
    assert echo["InferenceComponentStatus"] == llm["InferenceComponentStatus"] == "InService"
    assert echo["RuntimeConfig"] == {"DesiredCopyCount": 2, "CurrentCopyCount": 2}
    assert echo["Specification"]["ModelName"] == "echo-model" and echo["VariantName"] == "AllTraffic"
    running = copies(server, "ics", "ic-echo")
    assert len(running) == 2 and all(alive(c["pid"]) for c in running) and all(c["placed_on"] for c in running)

    out = rt.invoke_endpoint(EndpointName="ics", InferenceComponentName="ic-echo", Body=b"hello")
    assert out["Body"].read() == b"hello" and out["InvokedProductionVariant"] == "AllTraffic"
    out = rt.invoke_endpoint(EndpointName="ics", InferenceComponentName="ic-llm", ContentType="application/json",
                             Body=json.dumps({"inputs": "hi", "parameters": {"max_new_tokens": 3}}))
    assert "generated_text" in json.loads(out["Body"].read())[0]
    code, message = error(lambda: rt.invoke_endpoint(EndpointName="ics", InferenceComponentName="nope", Body=b"x"))
    assert code == "ValidationError" and "nope" in message

    # The g5.12xlarge has 4 GPUs: two echo copies and one two-GPU llm copy fill it.
    sm.update_inference_component_runtime_config(InferenceComponentName="ic-echo", DesiredRuntimeConfig={"CopyCount": 3})
    echo = settled(sm, "ic-echo")
    assert echo["RuntimeConfig"] == {"DesiredCopyCount": 3, "CurrentCopyCount": 2}
    assert echo["FailureReason"] == ("There is not enough hardware resources on the instances for this endpoint "
                                     "to create a copy of the inference component.")
    sm.update_inference_component_runtime_config(InferenceComponentName="ic-echo", DesiredRuntimeConfig={"CopyCount": 1})
    assert settled(sm, "ic-echo")["RuntimeConfig"] == {"DesiredCopyCount": 1, "CurrentCopyCount": 1}
    assert len(copies(server, "ics", "ic-echo")) == 1
    assert not alive(running[1]["pid"]) or not alive(running[0]["pid"])  # one copy's process is gone

    sm.update_inference_component_runtime_config(InferenceComponentName="ic-echo", DesiredRuntimeConfig={"CopyCount": 0})
    settled(sm, "ic-echo")
    assert error(lambda: rt.invoke_endpoint(EndpointName="ics", InferenceComponentName="ic-echo", Body=b"x")) == (
        "ValidationError", "Inference Component has no capacity to process this request. ApplicationAutoScaling may "
        "be in-progress (if configured) or try to increase the capacity by invoking "
        "UpdateInferenceComponentRuntimeConfig API.")

    listed = sm.list_inference_components(EndpointNameEquals="ics", SortBy="Name", SortOrder="Ascending")
    assert [c["InferenceComponentName"] for c in listed["InferenceComponents"]] == ["ic-echo", "ic-llm"]
    code, message = error(lambda: sm.delete_endpoint(EndpointName="ics"))
    assert code == "ValidationException" and "hosts inference components" in message

    llm_pids = [c["pid"] for c in copies(server, "ics", "ic-llm")]
    for name in ("ic-echo", "ic-llm"):
        sm.delete_inference_component(InferenceComponentName=name)
        # cleanup written for AWS describes what it has just deleted (--min-deleting-seconds, default 1)
        assert sm.describe_inference_component(InferenceComponentName=name)["InferenceComponentStatus"] == "Deleting"
    eventually(lambda: not sm.list_inference_components(EndpointNameEquals="ics")["InferenceComponents"], timeout=30)
    assert not any(alive(p) for p in llm_pids)
    sm.delete_endpoint(EndpointName="ics")
    assert sm.describe_endpoint(EndpointName="ics")["EndpointStatus"] == "Deleting"
    sm.get_waiter("endpoint_deleted").wait(EndpointName="ics", WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def test_least_outstanding_spreads_concurrent_calls_over_a_components_copies(server, sm, rt):
    sm.create_model(ModelName="slow", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": LLM_ENV})
    ic_endpoint(sm, "lor-ic", "ml.g5.48xlarge")
    component(sm, "chat", "lor-ic", "slow", copies=3)
    body = json.dumps({"inputs": "q", "parameters": {"max_new_tokens": 150}})  # about 1.5 s each
    threads = []
    for n in range(1, 4):
        t = threading.Thread(target=lambda: rt.invoke_endpoint(EndpointName="lor-ic", InferenceComponentName="chat",
                                                               ContentType="application/json", Body=body))
        t.start()
        threads.append(t)
        eventually(lambda n=n: sum(c["in_flight"] for c in copies(server, "lor-ic", "chat")) == n)
    assert sorted(c["in_flight"] for c in copies(server, "lor-ic", "chat")) == [1, 1, 1]
    for t in threads:
        t.join()


def test_copies_are_placed_only_where_they_fit(server, sm):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    ic_endpoint(sm, "fit", "ml.g5.2xlarge", count=2)  # two instances with one GPU each
    placed = component(sm, "two-gpus", "fit", "m", copies=1, gpus=2)
    assert placed["RuntimeConfig"]["CurrentCopyCount"] == 0 and "not enough hardware" in placed["FailureReason"]
    spread = component(sm, "one-gpu", "fit", "m", copies=3)
    assert spread["RuntimeConfig"] == {"DesiredCopyCount": 3, "CurrentCopyCount": 2}
    hosts = {h["id"]: h for h in server.endpoint_view("fit")["variants"][0]["hosts"]}
    assert sorted(len(h["copies"]) for h in hosts.values()) == [1, 1]  # SPREAD: one per instance
    assert all(h["free"]["accelerators"] == 0 for h in hosts.values())


def test_bad_input_gets_validation_errors(server, sm, rt):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    code, message = error(lambda: sm.create_endpoint_config(EndpointConfigName="mixed", ExecutionRoleArn=ROLE,
                                                            ProductionVariants=[
        {"VariantName": "a", "ModelName": "m", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1},
        {"VariantName": "b", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}]))
    assert code == "ValidationException" and "cannot mix" in message
    code, message = error(lambda: sm.create_endpoint_config(EndpointConfigName="norole", ProductionVariants=[
        {"VariantName": "a", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1}]))
    assert code == "ValidationException" and "ExecutionRoleArn" in message
    sm.create_endpoint_config(EndpointConfigName="model-config", ProductionVariants=[
        {"VariantName": "a", "ModelName": "m", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName="model-ep", EndpointConfigName="model-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="model-ep", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    code, message = error(lambda: sm.create_inference_component(
        InferenceComponentName="x", EndpointName="model-ep", VariantName="a",
        Specification={"ModelName": "m", "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 128}},
        RuntimeConfig={"CopyCount": 1}))
    assert code == "ValidationException" and "need a variant without ModelName" in message
    code, message = error(lambda: rt.invoke_endpoint(EndpointName="model-ep", InferenceComponentName="x", Body=b"x"))
    assert code == "ValidationError" and "is not hosted on endpoint model-ep" in message
    code, _ = error(lambda: sm.create_inference_component(
        InferenceComponentName="x", EndpointName="missing", VariantName="a",
        Specification={"ModelName": "m", "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 128}},
        RuntimeConfig={"CopyCount": 1}))
    assert code == "ValidationException"
    code, message = error(lambda: sm.describe_inference_component(InferenceComponentName="missing"))
    assert code == "ValidationException" and message.startswith('Could not find inference component "arn:aws:sagemaker:')


def test_managed_instance_scaling_adds_and_releases_instances(server, sm, rt):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_endpoint_config(EndpointConfigName="mis-config", ExecutionRoleArn=ROLE, ProductionVariants=[{
        "VariantName": "AllTraffic", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1,
        "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 0, "MaxInstanceCount": 3}}])
    sm.create_endpoint(EndpointName="mis", EndpointConfigName="mis-config")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="mis", WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    def instances() -> int:
        (variant,) = sm.describe_endpoint(EndpointName="mis")["ProductionVariants"]
        assert variant["ManagedInstanceScaling"]["MaxInstanceCount"] == 3
        return variant["CurrentInstanceCount"]

    assert instances() == 1
    grown = component(sm, "ic", "mis", "m", copies=4)  # one GPU per copy, one GPU per instance
    assert grown["RuntimeConfig"] == {"DesiredCopyCount": 4, "CurrentCopyCount": 3} and instances() == 3
    assert len({c["placed_on"] for c in copies(server, "mis", "ic")}) == 3
    sm.update_inference_component_runtime_config(InferenceComponentName="ic", DesiredRuntimeConfig={"CopyCount": 1})
    settled(sm, "ic")
    assert instances() == 1
    assert rt.invoke_endpoint(EndpointName="mis", InferenceComponentName="ic", Body=b"one")["Body"].read() == b"one"
    sm.update_inference_component_runtime_config(InferenceComponentName="ic", DesiredRuntimeConfig={"CopyCount": 0})
    settled(sm, "ic")
    assert instances() == 0  # MinInstanceCount 0


def test_an_update_rolls_copies_to_the_new_model_with_no_failed_call(server, sm, rt):
    sm.create_model(ModelName="v1", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_model(ModelName="v2", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": LLM_ENV})
    ic_endpoint(sm, "roll", "ml.g5.12xlarge")
    component(sm, "svc", "roll", "v1", copies=2)
    before = {c["pid"] for c in copies(server, "roll", "svc")}
    body = json.dumps({"inputs": "hi", "parameters": {"max_new_tokens": 2}})
    answers, failures, stop = [], [], threading.Event()

    def load():
        while not stop.is_set():
            try:
                answers.append(rt.invoke_endpoint(EndpointName="roll", InferenceComponentName="svc",
                                                  ContentType="application/json", Body=body)["Body"].read())
            except ClientError as exc:  # noqa: PERF203 - every failure is kept and asserted on
                failures.append(exc)

    callers = [threading.Thread(target=load) for _ in range(4)]
    for t in callers:
        t.start()
    eventually(lambda: len(answers) >= 20)
    sm.update_inference_component(
        InferenceComponentName="svc",
        Specification={"ModelName": "v2", "ComputeResourceRequirements": {
            "NumberOfAcceleratorDevicesRequired": 1, "MinMemoryRequiredInMb": 1024}},
        DeploymentConfig={"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "COPY_COUNT", "Value": 1},
                                                  "WaitIntervalInSeconds": 0}})
    described = settled(sm, "svc")
    eventually(lambda: len(answers) >= 20 + 40)
    stop.set()
    for t in callers:
        t.join()
    assert failures == []
    assert described["Specification"]["ModelName"] == "v2" and described["RuntimeConfig"]["CurrentCopyCount"] == 2
    assert described["LastDeploymentConfig"]["RollingUpdatePolicy"]["MaximumBatchSize"]["Value"] == 1
    after = copies(server, "roll", "svc")
    assert len(after) == 2 and not before & {c["pid"] for c in after}
    assert all(not alive(p) for p in before)
    out = rt.invoke_endpoint(EndpointName="roll", InferenceComponentName="svc", ContentType="application/json", Body=body)
    assert "generated_text" in json.loads(out["Body"].read())[0]  # the new model answers
    assert answers[0] == body.encode()  # the old one echoed


def test_an_alarm_while_a_batch_bakes_rolls_the_copies_back(server, sm, rt):
    """AutoRollbackConfiguration: the first new copy bakes (an hour), its alarm trips, and every
    copy runs the old specification again; the component says why."""
    sm.create_model(ModelName="v1", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_model(ModelName="v2", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": LLM_ENV})
    ic_endpoint(sm, "back", "ml.g5.12xlarge")
    component(sm, "svc", "back", "v1", copies=2)
    before = {c["pid"] for c in copies(server, "back", "svc")}
    cw = client(server.url, "cloudwatch")
    cw.put_metric_alarm(AlarmName="svc-errors", Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors",
                        Dimensions=[{"Name": "InferenceComponentName", "Value": "svc"}], Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold",
                        TreatMissingData="notBreaching")
    sm.update_inference_component(
        InferenceComponentName="svc",
        Specification={"ModelName": "v2", "ComputeResourceRequirements": {
            "NumberOfAcceleratorDevicesRequired": 1, "MinMemoryRequiredInMb": 1024}},
        DeploymentConfig={"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "COPY_COUNT", "Value": 1},
                                                  "WaitIntervalInSeconds": 3600},
                          "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "svc-errors"}]}})
    eventually(lambda: len(before & {c["pid"] for c in copies(server, "back", "svc")}) == 1)  # one batch done
    assert sm.describe_inference_component(InferenceComponentName="svc")["InferenceComponentStatus"] == "Updating"
    cw.set_alarm_state(AlarmName="svc-errors", StateValue="ALARM", StateReason="the new model fails")
    described = settled(sm, "svc")
    assert described["InferenceComponentStatus"] == "InService"
    assert described["Specification"]["ModelName"] == "v1" and described["RuntimeConfig"]["CurrentCopyCount"] == 2
    assert described["FailureReason"] == ("Rolling back the update: alarm svc-errors went into ALARM while copies "
                                          "were being replaced.")
    for _ in range(4):  # every copy answers as the old model does
        assert rt.invoke_endpoint(EndpointName="back", InferenceComponentName="svc", Body=b"v1?")["Body"].read() == b"v1?"


def test_an_update_past_its_time_limit_rolls_the_copies_back():
    """MaximumExecutionTimeoutInSeconds (at least 600: one second on a clock 600 times faster)."""
    srv = EmulatorProcess("--clock-speed", "600")
    try:
        sm = client(srv.url)
        sm.create_model(ModelName="v1", PrimaryContainer={"Image": "sagemaker-emu/echo"})
        sm.create_model(ModelName="v2", PrimaryContainer={"Image": "sagemaker-emu/echo"})
        ic_endpoint(sm, "late", "ml.g5.12xlarge")
        component(sm, "svc", "late", "v1", copies=2)
        sm.update_inference_component(
            InferenceComponentName="svc",
            Specification={"ModelName": "v2", "ComputeResourceRequirements": {
                "NumberOfAcceleratorDevicesRequired": 1, "MinMemoryRequiredInMb": 1024}},
            DeploymentConfig={"RollingUpdatePolicy": {"MaximumBatchSize": {"Type": "COPY_COUNT", "Value": 1},
                                                      "WaitIntervalInSeconds": 3600,
                                                      "MaximumExecutionTimeoutInSeconds": 600}})
        described = settled(sm, "svc")
        assert described["Specification"]["ModelName"] == "v1"
        assert described["FailureReason"] == ("Rolling back the update: it did not finish within "
                                              "MaximumExecutionTimeoutInSeconds (600 s).")
    finally:
        srv.stop()


def test_an_adapter_is_served_by_its_bases_copies_and_goes_first(server, sm, rt):
    sm.create_model(ModelName="base-model", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": LLM_ENV})
    ic_endpoint(sm, "lora", "ml.g5.12xlarge")
    component(sm, "base", "lora", "base-model", copies=2)
    sm.create_inference_component(
        InferenceComponentName="tuned", EndpointName="lora",
        Specification={"BaseInferenceComponentName": "base", "Container": {"ArtifactUrl": "s3://bucket/adapters/tuned/"}})
    adapter = settled(sm, "tuned")
    assert adapter["InferenceComponentStatus"] == "InService" and adapter["VariantName"] == "AllTraffic"
    assert adapter["RuntimeConfig"]["CurrentCopyCount"] == 2  # its base's copies
    assert copies(server, "lora", "tuned") == [] and len(copies(server, "lora", "base")) == 2  # no processes of its own
    body = json.dumps({"inputs": "hi", "parameters": {"max_new_tokens": 2}})
    out = json.loads(rt.invoke_endpoint(EndpointName="lora", InferenceComponentName="tuned",
                                        ContentType="application/json", Body=body)["Body"].read())
    assert out[0]["adapter"] == "tuned"
    plain = json.loads(rt.invoke_endpoint(EndpointName="lora", InferenceComponentName="base",
                                          ContentType="application/json", Body=body)["Body"].read())
    assert "adapter" not in plain[0]
    code, message = error(lambda: sm.delete_inference_component(InferenceComponentName="base"))
    assert code == "ValidationException" and "adapter inference components use it: tuned" in message

    # a new artifact for the adapter: Updating, then InService, its base's copies untouched
    sm.update_inference_component(InferenceComponentName="tuned", Specification={
        "BaseInferenceComponentName": "base", "Container": {"ArtifactUrl": "s3://bucket/adapters/tuned-v2/"}})
    updated = settled(sm, "tuned")
    assert updated["InferenceComponentStatus"] == "InService"
    assert updated["Specification"]["Container"]["ArtifactUrl"] == "s3://bucket/adapters/tuned-v2/"
    assert len(copies(server, "lora", "base")) == 2
    for call, words in (
            (lambda: sm.update_inference_component(InferenceComponentName="tuned", Specification={
                "BaseInferenceComponentName": "other", "Container": {"ArtifactUrl": "s3://b/a/"}}), "keeps its base"),
            (lambda: sm.update_inference_component(InferenceComponentName="tuned", RuntimeConfig={"CopyCount": 2}),
             "keeps its base"),
            (lambda: sm.update_inference_component(InferenceComponentName="base", Specification={
                "BaseInferenceComponentName": "tuned"}), "is not an adapter"),
            (lambda: sm.update_inference_component_runtime_config(
                InferenceComponentName="tuned", DesiredRuntimeConfig={"CopyCount": 2}), "update the base instead")):
        code, message = error(call)
        assert code == "ValidationException" and words in message, message
    code, message = error(lambda: sm.create_inference_component(
        InferenceComponentName="bad", EndpointName="lora",
        Specification={"BaseInferenceComponentName": "nope", "Container": {"ArtifactUrl": "s3://b/a/"}}))
    assert code == "ValidationException" and "nope" in message
    sm.delete_inference_component(InferenceComponentName="tuned")
    eventually(lambda: [c["InferenceComponentName"] for c in
                        sm.list_inference_components(EndpointNameEquals="lora")["InferenceComponents"]] == ["base"])
    sm.delete_inference_component(InferenceComponentName="base")


def test_components_take_tags_and_list_by_every_filter(server, sm):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    ic_endpoint(sm, "tags", "ml.g5.12xlarge")
    for name in ("alpha", "beta"):
        component(sm, name, "tags", "m", copies=1)
    arn = sm.describe_inference_component(InferenceComponentName="alpha")["InferenceComponentArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "team", "Value": "search"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "search"}]
    page = sm.list_inference_components(VariantNameEquals="AllTraffic", StatusEquals="InService", NameContains="ALP")
    assert [c["InferenceComponentName"] for c in page["InferenceComponents"]] == ["alpha"]
    first = sm.list_inference_components(MaxResults=1, SortBy="Name", SortOrder="Ascending")
    second = sm.list_inference_components(MaxResults=1, SortBy="Name", SortOrder="Ascending", NextToken=first["NextToken"])
    assert [first["InferenceComponents"][0]["InferenceComponentName"],
            second["InferenceComponents"][0]["InferenceComponentName"]] == ["alpha", "beta"]
    assert sm.list_inference_components(EndpointNameEquals="other")["InferenceComponents"] == []


def test_metrics_per_component_and_they_go_with_it(server, sm, rt):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    ic_endpoint(sm, "met", "ml.g5.12xlarge")
    component(sm, "counted", "met", "m", copies=2)
    for _ in range(3):
        rt.invoke_endpoint(EndpointName="met", InferenceComponentName="counted", Body=b"x")
    sm.update_inference_component_runtime_config(InferenceComponentName="counted",
                                                 DesiredRuntimeConfig={"CopyCount": 0})
    settled(sm, "counted")
    error(lambda: rt.invoke_endpoint(EndpointName="met", InferenceComponentName="counted", Body=b"x"))

    def series(name: str) -> dict[str, float]:
        _, _, text = server.post("/_emu/metrics", method="GET")
        return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.decode().splitlines()
                if line.startswith(name + "{") and 'endpoint="met"' in line}

    assert sum(series("sagemaker_emu_component_invocations_total").values()) == 3
    assert all('inference_component="counted"' in k and 'copy="ic:counted-' in k
               for k in series("sagemaker_emu_component_invocations_total"))
    assert series("sagemaker_emu_component_errors_total") == {
        'sagemaker_emu_component_errors_total{endpoint="met",inference_component="counted",code="ValidationError"}': 1}
    sm.delete_inference_component(InferenceComponentName="counted")
    eventually(lambda: not sm.list_inference_components(EndpointNameEquals="met")["InferenceComponents"])
    assert series("sagemaker_emu_component_invocations_total") == {}
    assert series("sagemaker_emu_component_errors_total") == {}


def test_prefix_aware_among_copies_counts_only_the_chosen_copys_calls(server, sm, rt):
    sm.create_model(ModelName="echo", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    sm.create_model(ModelName="busy", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": LLM_ENV})
    sm.create_endpoint_config(EndpointConfigName="pfx-2", ExecutionRoleArn=ROLE, ProductionVariants=[{
        "VariantName": "AllTraffic", "InstanceType": "ml.g5.12xlarge", "InitialInstanceCount": 1,
        "RoutingConfig": {"RoutingStrategy": "PREFIX_AWARE", "PrefixAwareRoutingConfig": {
            "PrefixLength": 1024, "ConcurrencyThreshold": 2}}}])
    sm.create_endpoint(EndpointName="pfx", EndpointConfigName="pfx-2")
    sm.get_waiter("endpoint_in_service").wait(EndpointName="pfx", WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    component(sm, "a", "pfx", "echo", copies=2)
    component(sm, "b", "pfx", "busy", copies=1)  # on the same instance as a's copies
    long = json.dumps({"inputs": "q", "parameters": {"max_new_tokens": 150}})
    busy = [threading.Thread(target=lambda: rt.invoke_endpoint(EndpointName="pfx", InferenceComponentName="b",
                                                               ContentType="application/json", Body=long))
            for _ in range(2)]
    for t in busy:
        t.start()
    eventually(lambda: sum(c["in_flight"] for c in copies(server, "pfx", "b")) == 2)  # b's copy is at the threshold
    for n in range(10):
        rt.invoke_endpoint(EndpointName="pfx", InferenceComponentName="a", Body=b"shared system prompt " * 60 + b"%d" % n)
    assert sorted(c["served"] for c in copies(server, "pfx", "a")) == [0, 10]  # one owner, never spilled
    for t in busy:
        t.join()


def test_kv_aware_among_copies_sends_a_repeated_prompt_back_to_the_copy_that_cached_it(server, sm, rt):
    sm.create_model(ModelName="llm", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": LLM_ENV})
    ic_endpoint(sm, "kv-ic", "ml.g5.12xlarge", strategy="KV_AWARE")
    component(sm, "chat", "kv-ic", "llm", copies=3)
    system = " ".join(f"rule{n}." for n in range(200))  # 400 tokens: 25 cache blocks

    def ask(question: str) -> dict:
        payload = {"inputs": system + " " + question, "parameters": {"max_new_tokens": 1, "details": True}}
        out = rt.invoke_endpoint(EndpointName="kv-ic", InferenceComponentName="chat", Body=json.dumps(payload),
                                 ContentType="application/json")
        return json.loads(out["Body"].read())[0]["details"]

    assert ask("What is rule 7?")["cached_tokens"] == 0
    home = {c["id"] for c in copies(server, "kv-ic", "chat") if c["served"]}
    for n in range(6):
        assert ask(f"And rule {n}?")["cached_tokens"] >= 400 - 16  # the whole shared prompt is reused
    assert {c["id"] for c in copies(server, "kv-ic", "chat") if c["served"]} == home and len(home) == 1


def test_a_session_sticks_to_the_copy_that_opened_it(server, sm, rt):
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sagemaker-emu/echo"})
    ic_endpoint(sm, "sess", "ml.g5.12xlarge", strategy="RANDOM")
    component(sm, "chat", "sess", "m", copies=3)
    opened = rt.invoke_endpoint(EndpointName="sess", InferenceComponentName="chat", SessionId="NEW_SESSION", Body=b"hi")
    session = opened["NewSessionId"].split(";")[0]
    for _ in range(8):
        rt.invoke_endpoint(EndpointName="sess", InferenceComponentName="chat", SessionId=session, Body=b"again")
    assert sorted(c["served"] for c in copies(server, "sess", "chat")) == [0, 0, 9]


def test_streaming_through_a_component(server, sm, rt):
    sm.create_model(ModelName="llm", PrimaryContainer={"Image": "sagemaker-emu/llm-sim", "Environment": LLM_ENV})
    ic_endpoint(sm, "stream-ic", "ml.g5.12xlarge")
    sm.create_inference_component(
        InferenceComponentName="chat", EndpointName="stream-ic", VariantName="AllTraffic",
        Specification={"ModelName": "llm", "StartupParameters": {"ModelDataDownloadTimeoutInSeconds": 600,
                                                                 "ContainerStartupHealthCheckTimeoutInSeconds": 600},
                       "ComputeResourceRequirements": {"NumberOfAcceleratorDevicesRequired": 1,
                                                       "NumberOfCpuCoresRequired": 2, "MinMemoryRequiredInMb": 4096}},
        RuntimeConfig={"CopyCount": 1})
    assert settled(sm, "chat")["Specification"]["StartupParameters"]["ContainerStartupHealthCheckTimeoutInSeconds"] == 600
    out = rt.invoke_endpoint_with_response_stream(
        EndpointName="stream-ic", InferenceComponentName="chat", ContentType="application/json",
        Body=json.dumps({"inputs": "hi", "parameters": {"max_new_tokens": 5}, "stream": True}))
    events = [e["PayloadPart"]["Bytes"] for e in out["Body"] if "PayloadPart" in e]
    text = b"".join(events).decode()
    assert text.count("data:") == 5 and out["InvokedProductionVariant"] == "AllTraffic"
    code, message = error(lambda: rt.invoke_endpoint_with_response_stream(EndpointName="stream-ic", Body=b"{}"))
    assert code == "ValidationError" and message.startswith("Inference Component Name header is required")


def test_managed_scaling_counts_its_maximum_against_the_quota(tmp_path):
    from sagemaker_emu.testing import EmulatorProcess, client

    srv = EmulatorProcess("--quota", "ml.g5.xlarge=4")
    try:
        sm = client(srv.url)
        sm.create_endpoint_config(EndpointConfigName="big", ExecutionRoleArn=ROLE, ProductionVariants=[{
            "VariantName": "AllTraffic", "InstanceType": "ml.g5.xlarge", "InitialInstanceCount": 1,
            "ManagedInstanceScaling": {"Status": "ENABLED", "MinInstanceCount": 1, "MaxInstanceCount": 5}}])
        code, message = error(lambda: sm.create_endpoint(EndpointName="big", EndpointConfigName="big"))
        assert code == "ResourceLimitExceeded" and "a request delta of 5 Instances" in message
    finally:
        srv.stop()

"""AI workload configs and AI benchmark jobs (issue 29, item 1) through boto3 at the one URL:
the WorkloadSpec read and refused as SageMaker does, jobs' statuses, listing, stopping and
deleting. Without AIPerf where the server can run it, a job fails saying how to install it."""

import json

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import EmulatorProcess, client, deploy
from tests.integration.test_fleet import eventually

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
SPEC = {"benchmark": {"type": "aiperf"}, "parameters": {"concurrency": 2, "request_count": 10, "isl": 64,
                                                        "output_tokens_mean": 8, "tokenizer": "gpt2"}}


def error(call) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call()
    return info.value.response["Error"]["Code"], info.value.response["Error"]["Message"]


def config(sm, name: str, spec: dict | str = SPEC, **extra) -> str:
    inline = spec if isinstance(spec, str) else json.dumps(spec)
    return sm.create_ai_workload_config(AIWorkloadConfigName=name, AIWorkloadConfigs={
        "WorkloadSpec": {"Inline": inline}}, **extra)["AIWorkloadConfigArn"]


def test_workload_configs_are_checked_described_listed_and_deleted(sm):
    arn = config(sm, "synthetic", Tags=[{"Key": "team", "Value": "ml"}])
    assert arn == "arn:aws:sagemaker:us-east-1:123456789012:ai-workload-config/synthetic"
    config(sm, "from-yaml", "benchmark:\n  type: aiperf\nparameters:\n  concurrency: 4\n", DatasetConfig={
        "InputDataConfig": [{"ChannelName": "dataset", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/d.jsonl"}}}]})
    described = sm.describe_ai_workload_config(AIWorkloadConfigName="synthetic")
    assert described["AIWorkloadConfigs"]["WorkloadSpec"]["Inline"] == json.dumps(SPEC)
    assert described["Tags"] == [{"Key": "team", "Value": "ml"}]
    assert error(lambda: config(sm, "synthetic"))[0] == "ResourceInUse"
    listed = sm.list_ai_workload_configs(SortBy="Name", SortOrder="Ascending")["AIWorkloadConfigs"]
    assert [c["AIWorkloadConfigName"] for c in listed] == ["from-yaml", "synthetic"]
    assert [c["AIWorkloadConfigName"] for c in sm.list_ai_workload_configs(NameContains="yaml")[
        "AIWorkloadConfigs"]] == ["from-yaml"]
    sm.delete_ai_workload_config(AIWorkloadConfigName="from-yaml")
    assert error(lambda: sm.describe_ai_workload_config(AIWorkloadConfigName="from-yaml"))[0] == "ResourceNotFound"


@pytest.mark.parametrize("spec, text", [
    ({"benchmark": {"type": "genai-perf"}}, "the only supported type is aiperf"),
    ({"parameters": {"concurrency": 1}}, "must have a benchmark with a type"),
    ({**SPEC, "parameters": {"concurency": 1}}, "Unknown WorkloadSpec parameters: concurency"),
    ({**SPEC, "parameters": {"concurrency": "many"}}, "concurrency must be of type integer"),
    ({**SPEC, "parameters": {"isl": 10, "prompt_input_tokens_mean": 20}}, "name the same setting"),
    ({**SPEC, "secrets": {"hf_token": "hf_abc123"}}, "must be Secrets Manager secret ARNs"),
    ({**SPEC, "tooling": {"api_standard": "anthropic"}}, "the only supported one is openai"),
    ({**SPEC, "extra": 1}, "Unknown WorkloadSpec keys: extra"),
    ({**SPEC, "parameters": {"concurrency": 100000}}, "sagemaker-emu runs at most 1000"),
    ({**SPEC, "parameters": {"num_requests": 10**9}}, "sagemaker-emu runs at most 10000000"),  # an alias too
    ({**SPEC, "parameters": {"request_count": -1}}, "not negative"),
    ("benchmark: {type: aiperf}\nparameters: {request_rate: .nan}\n", "must be a finite number"),
    ("a: &x [1]\nb: *x\n", "YAML alias"),
    ("{not yaml", "not valid YAML or JSON"),
    ("[1, 2]", "must be a YAML or JSON object"),
])
def test_a_workload_spec_that_breaks_a_rule_is_refused_naming_it(sm, spec, text):
    code, message = error(lambda: config(sm, "bad", spec))
    assert code == "ValidationException" and text in message


@pytest.fixture(scope="module")
def no_aiperf():
    """A server that has no aiperf command (SAGEMAKER_EMU_AIPERF set, and empty)."""
    srv = EmulatorProcess(env={"SAGEMAKER_EMU_AIPERF": ""})
    yield srv
    srv.stop()


def test_a_benchmark_job_without_aiperf_fails_saying_how_to_install_it(no_aiperf):
    sm = client(no_aiperf.url)
    deploy(sm, "chat", container={"Image": "sagemaker-emu/llm-sim"})
    config(sm, "synthetic")
    target = {"Endpoint": {"Identifier": "chat"}}
    job = sm.create_ai_benchmark_job(AIBenchmarkJobName="first", BenchmarkTarget=target, RoleArn=ROLE,
                                     OutputConfig={"S3OutputLocation": "s3://results/bench"},
                                     AIWorkloadConfigIdentifier="synthetic")["AIBenchmarkJobArn"]
    assert job == "arn:aws:sagemaker:us-east-1:123456789012:ai-benchmark-job/first"
    failed = eventually(lambda: (lambda d: d if d["AIBenchmarkJobStatus"] == "Failed" else None)(
        sm.describe_ai_benchmark_job(AIBenchmarkJobName="first")))
    assert "pip install 'sagemaker-emu[aiperf]'" in failed["FailureReason"]
    assert failed["StartTime"] <= failed["EndTime"] and failed["AIWorkloadConfigIdentifier"] == "synthetic"
    assert failed["OutputConfig"]["CloudWatchLogs"][0]["LogStreamName"] == "first/aiperf"
    [summary] = sm.list_ai_benchmark_jobs(StatusEquals="Failed")["AIBenchmarkJobs"]
    assert summary["AIBenchmarkJobName"] == "first" and summary["AIWorkloadConfigName"] == "synthetic"
    assert sm.list_ai_benchmark_jobs(StatusEquals="InProgress")["AIBenchmarkJobs"] == []
    code, message = error(lambda: sm.stop_ai_benchmark_job(AIBenchmarkJobName="first"))
    assert code == "ValidationException" and "only a job in progress can be stopped" in message
    assert error(lambda: sm.create_ai_benchmark_job(
        AIBenchmarkJobName="first", BenchmarkTarget=target, RoleArn=ROLE, AIWorkloadConfigIdentifier="synthetic",
        OutputConfig={"S3OutputLocation": "s3://results/bench"}))[0] == "ResourceInUse"
    sm.delete_ai_benchmark_job(AIBenchmarkJobName="first")
    assert error(lambda: sm.describe_ai_benchmark_job(AIBenchmarkJobName="first"))[0] == "ResourceNotFound"


def test_a_job_needs_its_config_an_endpoint_in_service_and_its_components(server, sm):
    config(sm, "synthetic")
    new = {"BenchmarkTarget": {"Endpoint": {"Identifier": "nowhere"}}, "RoleArn": ROLE,
           "OutputConfig": {"S3OutputLocation": "s3://results/bench"}, "AIWorkloadConfigIdentifier": "synthetic"}
    code, message = error(lambda: sm.create_ai_benchmark_job(AIBenchmarkJobName="j", **new))
    assert code == "ResourceNotFound" and "endpoint/nowhere" in message
    deploy(sm, "chat")
    code, message = error(lambda: sm.create_ai_benchmark_job(AIBenchmarkJobName="j", **{
        **new, "BenchmarkTarget": {"Endpoint": {"Identifier": "chat"}}, "AIWorkloadConfigIdentifier": "missing"}))
    assert code == "ResourceNotFound" and "ai-workload-config/missing" in message
    code, message = error(lambda: sm.create_ai_benchmark_job(AIBenchmarkJobName="j", **{
        **new, "BenchmarkTarget": {"Endpoint": {"Identifier": "chat", "InferenceComponents": [{"Identifier": "ic"}]}}}))
    assert code == "ResourceNotFound" and "inference-component/ic" in message


def test_a_dataset_channel_cannot_name_a_directory_above_its_own(sm):
    code, message = error(lambda: config(sm, "escape", DatasetConfig={"InputDataConfig": [
        {"ChannelName": "..", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/d.jsonl"}}}]}))
    assert code == "ValidationException" and "cannot be '.' or '..'" in message

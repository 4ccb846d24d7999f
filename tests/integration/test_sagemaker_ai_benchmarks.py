"""AI benchmark jobs that run NVIDIA AIPerf (issue 29, item 2), as SageMaker runs it: against the
endpoint's OpenAI-compatible path, with a bearer token, offline, the archive written where
SageMaker writes it, AIPerf's output in the job's log stream, Stop ending the load. Under
`make test` these wait for the AIPerf install it started in the background; elsewhere they
are skipped without it (`make install-aiperf` builds it)."""

import io
import subprocess
import sys
import json
import os
import signal
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from sagemaker_emu.testing import EmulatorProcess, client, deploy
from tests.integration.installs import wait_for_install
from tests.integration.test_fleet import eventually

ROOT = Path(__file__).resolve().parents[2]
AIPERF = os.environ.get("SAGEMAKER_EMU_TEST_AIPERF", str(ROOT / ".venv-aiperf" / "bin" / "aiperf"))
STATUS = os.environ.get("SAGEMAKER_EMU_AIPERF_STATUS")  # written by `make test`'s background install
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
FAST = {"LLM_SIM_DECODE_MS_PER_TOKEN": "2", "LLM_SIM_PREFILL_BASE_MS": "1"}


@pytest.fixture(scope="module")
def aiperf_server():
    wait_for_install(STATUS, AIPERF, "NVIDIA AIPerf", "make test, or make install-aiperf,")
    srv = EmulatorProcess(env={"SAGEMAKER_EMU_AIPERF": AIPERF})
    sm = client(srv.url)
    deploy(sm, "chat", container={"Image": "sagemaker-emu/llm-sim", "Environment": FAST}, InitialInstanceCount=2)
    client(srv.url, "s3").create_bucket(Bucket="results")
    yield srv
    srv.stop()


def workload(sm, name: str, **parameters) -> None:
    spec = {"benchmark": {"type": "aiperf"}, "parameters": {"tokenizer": "meta-llama/Llama-3.2-1B", **parameters}}
    sm.create_ai_workload_config(AIWorkloadConfigName=name, AIWorkloadConfigs={"WorkloadSpec": {
        "Inline": json.dumps(spec)}})


def job(sm, name: str, config: str) -> None:
    sm.create_ai_benchmark_job(AIBenchmarkJobName=name, BenchmarkTarget={"Endpoint": {"Identifier": "chat"}},
                               OutputConfig={"S3OutputLocation": "s3://results/bench"}, RoleArn=ROLE,
                               AIWorkloadConfigIdentifier=config)


def ended(sm, name: str) -> dict:
    return eventually(lambda: (lambda d: d if d["AIBenchmarkJobStatus"] not in ("InProgress", "Stopping") else None)(
        sm.describe_ai_benchmark_job(AIBenchmarkJobName=name)), timeout=120)


def test_a_job_runs_aiperf_and_writes_sagemakers_archive(aiperf_server):
    sm, s3, logs = (client(aiperf_server.url, s) for s in ("sagemaker", "s3", "logs"))
    workload(sm, "small", concurrency=2, request_count=12, prompt_input_tokens_mean=48, output_tokens_mean=8)
    left = _aiperf_leftovers()
    job(sm, "measured", "small")
    done = ended(sm, "measured")
    assert _aiperf_leftovers() == left  # AIPerf's dataset files stayed in the job's own directory
    assert done["AIBenchmarkJobStatus"] == "Completed", done.get("FailureReason")
    archive = s3.get_object(Bucket="results", Key="bench/measured/output.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        names = set(tar.getnames())
        profile = json.load(tar.extractfile("profile_export_aiperf.json"))  # type: ignore[arg-type]
    assert {"profile_export_aiperf.json", "inputs.json", "outputs.json"} <= names
    assert profile["request_count"]["avg"] == 12 and profile["request_throughput"]["avg"] > 0
    assert profile["input_sequence_length"]["avg"] == 48  # llm-sim's tokenizer: the counts agree
    stream = done["OutputConfig"]["CloudWatchLogs"][0]["LogStreamName"]
    lines = [e["message"] for e in logs.get_log_events(logGroupName="/aws/sagemaker/AIBenchmarkJobs",
                                                       logStreamName=stream)["events"]]
    assert any("is not in the local Hugging Face cache" in line for line in lines)  # nothing reached the network
    assert any("Starting AIPerf" in line for line in lines)
    invocations = client(aiperf_server.url, "cloudwatch").get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="Invocations", Statistics=["Sum"], Period=60,
        Dimensions=[{"Name": "EndpointName", "Value": "chat"}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=done["StartTime"].timestamp() - 60, EndTime=time.time() + 60)["Datapoints"]
    assert sum(d["Sum"] for d in invocations) >= 12  # the job's calls are the endpoint's calls


def _aiperf_leftovers() -> set[Path]:
    """What AIPerf leaves behind by default: a dataset directory in the temporary directory, and
    an entry in its cache under the home directory, per run."""
    return {*Path(tempfile.gettempdir()).glob("aiperf_mmap_*"), *(Path.home() / ".cache/aiperf").glob("*/*")}


def _session(pid: str) -> int:
    """A process's session id (field 6 of /proc/<pid>/stat; the name in field 2 may hold spaces)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[3])


def _aiperf_processes(url: str, sessions: set[int] | None = None) -> list[int]:
    """Live processes of AIPerf runs against `url`: its command, and every process of its session
    (AIPerf's own workers do not name the URL); with `sessions`, those sessions' processes."""
    found, wanted = [], set(sessions or ())
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
            if sessions is None and "aiperf" in command and url in command:
                wanted.add(_session(entry.name))
            elif command and _session(entry.name) in wanted:
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue
    if sessions is None:
        return _aiperf_processes(url, wanted) if wanted else []
    return found


def test_stop_ends_the_load_and_an_active_job_holds_its_config(aiperf_server):
    sm = client(aiperf_server.url)
    workload(sm, "endless", concurrency=2, request_count=1_000_000, output_tokens_mean=8)
    job(sm, "stopped", "endless")
    eventually(lambda: _aiperf_processes(aiperf_server.url), timeout=60)  # AIPerf is sending
    with pytest.raises(ClientError) as info:
        sm.delete_ai_workload_config(AIWorkloadConfigName="endless")
    assert info.value.response["Error"]["Code"] == "ResourceInUse"
    with pytest.raises(ClientError) as info:
        sm.delete_ai_benchmark_job(AIBenchmarkJobName="stopped")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    sm.stop_ai_benchmark_job(AIBenchmarkJobName="stopped")
    assert sm.describe_ai_benchmark_job(AIBenchmarkJobName="stopped")["AIBenchmarkJobStatus"] in ("Stopping", "Stopped")
    done = ended(sm, "stopped")
    assert done["AIBenchmarkJobStatus"] == "Stopped" and "FailureReason" not in done
    assert _aiperf_processes(aiperf_server.url) == []  # the load ended with the job: no process left
    sm.delete_ai_benchmark_job(AIBenchmarkJobName="stopped")
    sm.delete_ai_workload_config(AIWorkloadConfigName="endless")


def test_bench_replay_runs_one_capture_through_every_strategy():
    """Issue 29, item 4: captured traffic replayed by AIPerf jobs through the four strategies."""
    wait_for_install(STATUS, AIPERF, "NVIDIA AIPerf", "make test, or make install-aiperf,")
    result = subprocess.run([sys.executable, "-m", "sagemaker_emu", "bench", "replay", "--requests", "16", "--seconds",
                             "2", "--instances", "2"], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "SAGEMAKER_EMU_AIPERF": AIPERF})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [line.split("|") for line in result.stdout.splitlines() if line.startswith("|") and "strategy" not in line
            and not line.startswith("|-")]
    assert [r[1].strip() for r in rows] == ["RANDOM", "LOR", "PREFIX", "KV"]
    assert all(r[2].strip() == "16" for r in rows)  # every captured request, replayed each time


def test_bench_cross_check_measures_one_workload_with_both_clients():
    """Issue 29, item 5: bench routing's client and AIPerf, the same workload, one table."""
    wait_for_install(STATUS, AIPERF, "NVIDIA AIPerf", "make test, or make install-aiperf,")
    for load in (["--rate", "0", "--users", "2"], ["--rate", "6"]):  # closed-loop users, then Poisson arrivals
        result = subprocess.run([sys.executable, "-m", "sagemaker_emu", "bench", "cross-check", "--seconds", "2",
                                 "--warmup", "1", "--instances", "1", *load], capture_output=True, text=True,
                                timeout=600, env={**os.environ, "SAGEMAKER_EMU_AIPERF": AIPERF})
        assert result.returncode == 0, result.stderr[-3000:]
        rows = {line.split("|")[1].strip(): line.split("|") for line in result.stdout.splitlines()
                if line.startswith("|") and not line.startswith("|-")}
        assert int(rows["bench routing"][2]) > 0 and int(rows["AIPerf (benchmark job)"][2]) > 0
        assert float(rows["AIPerf / bench routing"][6]) > 0  # a ratio of throughputs, measured in the same run


def test_no_aiperf_process_outlives_an_emulator_killed_mid_job():
    """No process is orphaned, ever: the worker guard kills AIPerf's whole process group (its
    own workers too) when the emulator dies, even by SIGKILL."""
    wait_for_install(STATUS, AIPERF, "NVIDIA AIPerf", "make test, or make install-aiperf,")
    srv = EmulatorProcess(env={"SAGEMAKER_EMU_AIPERF": AIPERF})
    try:
        sm = client(srv.url)
        deploy(sm, "chat", container={"Image": "sagemaker-emu/llm-sim", "Environment": FAST})
        workload(sm, "endless", concurrency=2, request_count=1_000_000, output_tokens_mean=8)
        job(sm, "doomed", "endless")
        eventually(lambda: _aiperf_processes(srv.url), timeout=60)
        sessions = {_session(str(pid)) for pid in _aiperf_processes(srv.url)}
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        eventually(lambda: _aiperf_processes(srv.url, sessions) == [], timeout=30)
    finally:
        srv.stop()

"""AI workload configs and AI benchmark jobs: `(backend, params, call) -> result dict`, run inside
`Backend.run` like control/operations.py.

A workload config holds a checked WorkloadSpec (control/workload_spec.py) and its dataset
channels. A benchmark job takes a snapshot of its config, targets an InService endpoint (and
some of its inference components), and is InProgress until its runner (benchmarks/, wired by
app.py through BenchmarkJobStarted) says Completed or Failed; StopAIBenchmarkJob moves it to
Stopping and tells the runner, which ends it as Stopped. Only an ended job may be deleted, and
a config that an active job uses may not be.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emu import arns
from sagemaker_emu.control import workload_spec
from sagemaker_emu.control.events import BenchmarkJobStarted, BenchmarkJobStopping
from sagemaker_emu.control.kinds import KINDS
from sagemaker_emu.control.listing import list_page
from sagemaker_emu.control.operations import set_tags
from sagemaker_emu.control.registry import Call, operation
from sagemaker_emu.control.resources import (
    JOB_ENDED, AIBenchmarkJob, AIWorkloadConfig, BenchmarkJobSnapshot, Status,
)
from sagemaker_emu.control.store import Backend
from sagemaker_emu.errors import InvalidInput, ServiceError

MAX_ACTIVE_JOBS = 10  # per account and Region (docs/decisions.md)
MAX_WORKLOAD_CONFIGS = 1000
LOG_GROUP = "/aws/sagemaker/AIBenchmarkJobs"


def _name_of(identifier: str, kind: str) -> str:
    """A name, or the name in an ARN of `kind` (`endpoint`, `ai-workload-config`, ...)."""
    if not identifier.startswith("arn:"):
        return identifier
    parsed = arns.parse(identifier)
    resource_type, _, name = parsed.resource.partition("/") if parsed else ("", "", "")
    if resource_type != kind:
        raise InvalidInput(f"{identifier} is not the ARN of a {kind.replace('-', ' ')}.")
    return name


def _find(backend: Backend, kind: str, identifier: str) -> Any:
    """The resource of `kind` a name or ARN names; ResourceNotFound (these operations' error)."""
    name = _name_of(identifier, kind)
    found = backend.tables[kind].get(name.lower())
    if found is None:
        raise ServiceError("ResourceNotFound", f'Could not find {KINDS[kind].noun} "{backend.arn(kind, name)}".')
    return found


# ---------------------------------------------------------------- workload configs


@operation
def create_ai_workload_config(backend: Backend, params: dict, call: Call) -> dict:
    name = params["AIWorkloadConfigName"]
    existing = backend.workload_configs.get(name.lower())
    if existing is not None:
        raise ServiceError("ResourceInUse", f'Cannot create already existing AI workload configuration "{existing.arn}".')
    if len(backend.workload_configs) >= MAX_WORKLOAD_CONFIGS:
        raise ServiceError("ResourceLimitExceeded", "The account-level service limit 'Number of AI workload "
                                                    f"configurations' is {MAX_WORKLOAD_CONFIGS}.")
    inline = ((params.get("AIWorkloadConfigs") or {}).get("WorkloadSpec") or {}).get("Inline")
    if inline is None:
        raise InvalidInput("AIWorkloadConfigs.WorkloadSpec.Inline is required: an inline YAML or JSON WorkloadSpec.")
    workload = workload_spec.parse(inline)
    channels = [c["ChannelName"] for c in (params.get("DatasetConfig") or {}).get("InputDataConfig", [])]
    if len(set(channels)) != len(channels):
        raise InvalidInput("Each DatasetConfig channel name must be unique.")
    if any(c in (".", "..") for c in channels):  # it names a directory the benchmark reads from
        raise InvalidInput("A DatasetConfig channel name cannot be '.' or '..'.")
    config = AIWorkloadConfig(name=name, arn=backend.arn("ai-workload-config", name), created=backend.now(),
                              spec={k: params[k] for k in ("DatasetConfig", "AIWorkloadConfigs") if k in params},
                              workload=workload)
    set_tags(backend, config.arn, params.get("Tags", []))
    backend.workload_configs[name.lower()] = config
    return {"AIWorkloadConfigArn": config.arn}


def _config(backend: Backend, identifier: str) -> AIWorkloadConfig:
    return _find(backend, "ai-workload-config", identifier)


@operation
def describe_ai_workload_config(backend: Backend, params: dict, call: Call) -> dict:
    config = _config(backend, params["AIWorkloadConfigName"])
    return {"AIWorkloadConfigName": config.name, "AIWorkloadConfigArn": config.arn, **config.spec,
            "Tags": backend.tags.get(config.arn.lower(), []), "CreationTime": config.created}


@operation
def list_ai_workload_configs(backend: Backend, params: dict, call: Call) -> dict:
    return list_page(backend.workload_configs.values(), params, lambda c: {
        "AIWorkloadConfigName": c.name, "AIWorkloadConfigArn": c.arn, "CreationTime": c.created},
        "AIWorkloadConfigs")


@operation
def delete_ai_workload_config(backend: Backend, params: dict, call: Call) -> dict:
    config = _config(backend, params["AIWorkloadConfigName"])
    user = next((j for j in backend.benchmark_jobs.values()
                 if j.workload_config.lower() == config.name.lower() and j.status not in JOB_ENDED), None)
    if user is not None:
        raise ServiceError("ResourceInUse", f'Cannot delete AI workload configuration "{config.arn}": AI benchmark job '
                                            f'"{user.arn}" is using it ({user.status.value}).')
    del backend.workload_configs[config.name.lower()]
    backend.tags.pop(config.arn.lower(), None)
    return {"AIWorkloadConfigArn": config.arn}


# ---------------------------------------------------------------- benchmark jobs


@operation
def create_ai_benchmark_job(backend: Backend, params: dict, call: Call) -> dict:
    name = params["AIBenchmarkJobName"]
    existing = backend.benchmark_jobs.get(name.lower())
    if existing is not None:
        raise ServiceError("ResourceInUse", f'Cannot create already existing AI benchmark job "{existing.arn}".')
    config = _config(backend, params["AIWorkloadConfigIdentifier"])
    target = (params["BenchmarkTarget"] or {}).get("Endpoint")
    if target is None:
        raise InvalidInput("BenchmarkTarget must name an Endpoint.")
    endpoint = _find(backend, "endpoint", target["Identifier"])
    if endpoint.status not in (Status.IN_SERVICE, Status.UPDATING):
        raise InvalidInput(f'Endpoint "{endpoint.arn}" is {endpoint.status.value}: a benchmark job needs an '
                           "InService endpoint.")
    components = []
    for ic in target.get("InferenceComponents", []):
        found = _find(backend, "inference-component", ic["Identifier"])
        if found.endpoint_name.lower() != endpoint.name.lower():
            raise InvalidInput(f'Inference component "{found.arn}" is not on endpoint "{endpoint.arn}".')
        components.append(found.name)
    if endpoint.variants and all(v.hosts_components for v in endpoint.variants) and not components:
        raise InvalidInput(f'Endpoint "{endpoint.arn}" hosts inference components: name the ones to benchmark in '
                           "BenchmarkTarget.Endpoint.InferenceComponents.")
    active = sum(j.status not in JOB_ENDED for j in backend.benchmark_jobs.values())
    if active >= MAX_ACTIVE_JOBS:
        raise ServiceError("ResourceLimitExceeded", "The account-level service limit 'Number of concurrent AI benchmark "
                                                    f"jobs' is {MAX_ACTIVE_JOBS} jobs, with current utilization of "
                                                    f"{active} jobs.")
    now = backend.now()
    job = AIBenchmarkJob(
        name=name, arn=backend.arn("ai-benchmark-job", name), created=now, modified=now, status=Status.IN_PROGRESS,
        spec={k: params[k] for k in ("BenchmarkTarget", "OutputConfig", "AIWorkloadConfigIdentifier", "RoleArn",
                                     "NetworkConfig") if k in params},
        workload_config=config.name, workload=config.workload,
        datasets=list((config.spec.get("DatasetConfig") or {}).get("InputDataConfig", [])),
        endpoint_name=endpoint.name, components=components, started=now)
    set_tags(backend, job.arn, params.get("Tags", []))
    backend.benchmark_jobs[name.lower()] = job
    backend.events.publish(BenchmarkJobStarted(BenchmarkJobSnapshot(
        name=job.name, arn=job.arn, region=backend.region, account=backend.account, endpoint_name=job.endpoint_name,
        components=tuple(components), workload=job.workload, datasets=tuple(job.datasets),
        output=params["OutputConfig"]["S3OutputLocation"], log_group=LOG_GROUP, log_stream=_stream(job))))
    return {"AIBenchmarkJobArn": job.arn}


def _stream(job: AIBenchmarkJob) -> str:
    return f"{job.name}/aiperf"


def _job(backend: Backend, name: str) -> AIBenchmarkJob:
    return _find(backend, "ai-benchmark-job", name)


@operation
def describe_ai_benchmark_job(backend: Backend, params: dict, call: Call) -> dict:
    job = _job(backend, params["AIBenchmarkJobName"])
    output: dict[str, Any] = {**job.spec["OutputConfig"], "CloudWatchLogs": [{
        "LogGroupArn": arns.arn("logs", backend.region, backend.account, f"log-group:{LOG_GROUP}"),
        "LogStreamName": _stream(job)}]}
    out: dict[str, Any] = {"AIBenchmarkJobName": job.name, "AIBenchmarkJobArn": job.arn,
                           "AIBenchmarkJobStatus": job.status.value, **job.spec, "OutputConfig": output,
                           "CreationTime": job.created, "Tags": backend.tags.get(job.arn.lower(), [])}
    for member, value in (("FailureReason", job.failure_reason), ("StartTime", job.started), ("EndTime", job.ended)):
        if value is not None:
            out[member] = value
    return out


@operation
def list_ai_benchmark_jobs(backend: Backend, params: dict, call: Call) -> dict:
    def summary(j: AIBenchmarkJob) -> dict:
        out = {"AIBenchmarkJobName": j.name, "AIBenchmarkJobArn": j.arn, "AIBenchmarkJobStatus": j.status.value,
               "CreationTime": j.created, "AIWorkloadConfigName": j.workload_config}
        return {**out, "EndTime": j.ended} if j.ended is not None else out

    return list_page(backend.benchmark_jobs.values(), params, summary, "AIBenchmarkJobs")


@operation
def stop_ai_benchmark_job(backend: Backend, params: dict, call: Call) -> dict:
    job = _job(backend, params["AIBenchmarkJobName"])
    if job.status == Status.IN_PROGRESS:
        backend.transition(job, Status.STOPPING)
        backend.events.publish(BenchmarkJobStopping(backend.region, backend.account, job.name))
    elif job.status != Status.STOPPING:
        raise InvalidInput(f'AI benchmark job "{job.arn}" is {job.status.value}: only a job in progress can be stopped.')
    return {"AIBenchmarkJobArn": job.arn}


@operation
def delete_ai_benchmark_job(backend: Backend, params: dict, call: Call) -> dict:
    job = _job(backend, params["AIBenchmarkJobName"])
    if job.status not in JOB_ENDED:
        raise InvalidInput(f'AI benchmark job "{job.arn}" is {job.status.value}: stop it, or let it end, before '
                           "deleting it.")
    del backend.benchmark_jobs[job.name.lower()]
    backend.tags.pop(job.arn.lower(), None)
    return {"AIBenchmarkJobArn": job.arn}

"""Runs AI benchmark jobs as SageMaker does: NVIDIA AIPerf against the endpoint.

One thread per job, told of each by the control plane's events (BenchmarkJobStarted,
BenchmarkJobStopping, wired by app.py), reporting each job's end through `Jobs` (the store's
`benchmark_ended`). A job:
1. fetches its dataset channels from S3 into its work directory (an object, or every object
   under a prefix, such as an endpoint's data capture);
2. runs `aiperf profile` (aiperf_args.py) against SageMaker's OpenAI-compatible path of the
   emulator itself, with a bearer token of the job's account, under the worker guard (its own
   process group, killed with the emulator); its output is the job's log stream;
3. archives AIPerf's artifacts as `output.tar.gz` under `<S3OutputLocation>/<job name>/`.
StopAIBenchmarkJob asks AIPerf to stop, and kills it a second later if it has not.

The `aiperf` command is `SAGEMAKER_EMU_AIPERF`, else the one beside this Python (the `aiperf`
extra's), else the one on the PATH; without one, the job
fails with a FailureReason that says how to install it, never an error of the call that made it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

from sagemaker_emu.bodies import Body, FileBody
from sagemaker_emu.benchmarks import aiperf_args, tokenizer
from sagemaker_emu.client_env import bearer_token

log = logging.getLogger("sagemaker_emu.benchmarks")

INSTALL = ("NVIDIA AIPerf is not installed where sagemaker-emu can run it: pip install 'sagemaker-emu[aiperf]' "
           "(or set SAGEMAKER_EMU_AIPERF to an aiperf command), then run the job again.")
STOP_GRACE_S = 1.0  # after asking AIPerf to stop, how long before it is killed
MAX_DATASET_BYTES = 1024**3
EXPORT = "profile_export_aiperf.json"  # AIPerf's summary of a run, among its artifacts


class Jobs(Protocol):
    """What the runner tells the control plane (control/store.py's Backends)."""

    def benchmark_ended(self, region: str, account: str, name: str, failure: str | None = None,
                        stopped: bool = False) -> None: ...


class Results(Protocol):
    """S3, as the runner uses it (neighbours/results.py's S3SnsResults)."""

    def fetch(self, url: str, directory: Path, max_bytes: int) -> int: ...

    def write(self, url: str, body: Body, content_type: str) -> None: ...


class JobView(Protocol):
    """A job as the control plane hands it over (control/resources.py's BenchmarkJobSnapshot)."""

    @property
    def name(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def account(self) -> str: ...

    @property
    def endpoint_name(self) -> str: ...

    @property
    def components(self) -> tuple[str, ...]: ...

    @property
    def workload(self) -> dict[str, Any]: ...

    @property
    def datasets(self) -> tuple[dict[str, Any], ...]: ...

    @property
    def output(self) -> str: ...

    @property
    def log_group(self) -> str: ...

    @property
    def log_stream(self) -> str: ...


def aiperf_command() -> str | None:
    """The aiperf executable to run (SAGEMAKER_EMU_AIPERF; else the one the `aiperf` extra put
    beside this Python, whether or not its environment is activated; else the PATH's), or None."""
    named = os.environ.get("SAGEMAKER_EMU_AIPERF")
    if named is not None:  # set, even empty: that one or none
        return named if named and os.access(named, os.X_OK) else None
    beside = Path(sys.executable).parent / "aiperf"
    return str(beside) if os.access(beside, os.X_OK) else shutil.which("aiperf")


class _Running:
    def __init__(self, job: JobView, work: Path) -> None:
        self.job = job
        self.work = work
        self.log = work / "aiperf.log"
        self.started = time.time()
        self.stop = threading.Event()
        self.summary: dict[str, Any] | None = None  # a completed job's headline numbers


class BenchmarkRunner:
    def __init__(self, jobs: Jobs, results: Results, url: Callable[[], str | None],
                 credentials: Callable[[str], tuple[str, str]], work_dir: Path) -> None:
        self.jobs = jobs
        self.results = results
        self.url = url  # the emulator's own URL, once it listens
        self.credentials = credentials  # account -> a key pair its calls are signed with
        self.work_dir = work_dir
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str, str], _Running] = {}  # (region, account, name); kept for the logs

    def started(self, job: JobView) -> None:
        """A job was created (called with the store's lock held: the work goes to a thread)."""
        running = _Running(job, self.work_dir / f"{job.name}.{job.region}.{job.account}.{time.time_ns()}")
        with self._lock:
            self._jobs[(job.region, job.account, job.name)] = running
        threading.Thread(target=self._run, args=(running,), daemon=True, name=f"benchmark-{job.name}").start()

    def stopping(self, region: str, account: str, name: str) -> None:
        """StopAIBenchmarkJob: its load ends, and the job is reported Stopped."""
        with self._lock:
            running = self._jobs.get((region, account, name))
        if running is not None:
            running.stop.set()

    def reset(self) -> None:
        """Stop every job's load and forget the jobs (the store forgets them too)."""
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        for running in jobs:
            running.stop.set()

    def summary(self, region: str, account: str, name: str) -> dict[str, Any] | None:
        """A completed job's percentiles, as AIPerf exported them (`SUMMARY_METRICS`), or None."""
        with self._lock:
            running = self._jobs.get((region, account, name))
        return running.summary if running is not None else None

    def log_groups(self) -> Iterable[tuple[str, str, float, list[tuple[str, Path]]]]:
        """(region, group, created, [(stream, file)]) for CloudWatch Logs: each job's AIPerf output."""
        with self._lock:
            jobs = list(self._jobs.values())
        groups: dict[tuple[str, str], tuple[float, list[tuple[str, Path]]]] = {}
        for running in jobs:
            job = running.job
            created, streams = groups.setdefault((job.region, job.log_group), (running.started, []))
            streams.append((job.log_stream, running.log))
        return [(region, group, created, streams) for (region, group), (created, streams) in groups.items()]

    # ------------------------------------------------------------ one job

    def _run(self, running: _Running) -> None:
        job, failure = running.job, None
        try:
            running.work.mkdir(parents=True, exist_ok=True)
            running.log.touch()
            failure = self._profile(running)
        except Exception as exc:  # never a job left InProgress by our own fault
            log.exception("benchmark job %s failed inside sagemaker-emu", job.name)
            failure = f"The job failed inside sagemaker-emu: {exc}"
        self.jobs.benchmark_ended(job.region, job.account, job.name, failure, stopped=running.stop.is_set())

    def _note(self, running: _Running, line: str) -> None:
        with open(running.log, "a") as f:
            f.write(f"sagemaker-emu: {line}\n")

    def _profile(self, running: _Running) -> str | None:
        """Run AIPerf for the job; the reason it failed, or None."""
        job, command, base = running.job, aiperf_command(), self.url()
        if command is None:
            return INSTALL
        if base is None:
            return "The emulator is not listening yet."
        inputs, artifacts = running.work / "input" / "data", running.work / "artifacts"
        for channel in job.datasets:  # an object, or a folder of them (a data capture's hours)
            try:
                self.results.fetch(channel["DataSource"]["S3DataSource"]["S3Uri"], inputs / channel["ChannelName"],
                                   MAX_DATASET_BYTES)
            except LookupError as exc:
                return f"Dataset channel {channel['ChannelName']}: {exc}"
        parameters = dict(job.workload["parameters"])
        tokenizer_dir, note = tokenizer.resolve(parameters.get("tokenizer"))
        if note:
            self._note(running, note)
        key, secret = self.credentials(job.account)
        try:
            args = aiperf_args.arguments(
                parameters, aiperf_args.urls(base, job.endpoint_name, job.components),
                job.components[0] if job.components else job.endpoint_name,
                bearer_token(key, secret, job.region), tokenizer_dir, artifacts, inputs)
        except ValueError as exc:
            return str(exc)
        code = self._spawn(running, [command, *args])
        if running.stop.is_set():
            return None
        if code != 0:
            return f"AIPerf exited with status {code}: {self._last_line(running.log)}"
        export = next(iter(sorted(artifacts.rglob(EXPORT))), None)
        if export is None:  # AIPerf can exit 0 having measured nothing
            return f"AIPerf wrote no {EXPORT}: {self._last_line(running.log)}"
        running.summary = _summary(export)
        archive = running.work / "output.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(artifacts.rglob("*")):
                if path.is_file():
                    tar.add(path, arcname=str(path.relative_to(artifacts)))
        self.results.write(f"{job.output.rstrip('/')}/{job.name}/output.tar.gz",
                           FileBody(archive, archive.stat().st_size), "application/gzip")
        return None

    def _spawn(self, running: _Running, argv: list[str]) -> int:
        """AIPerf under the worker guard: its own process group, which dies with the emulator."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "NO_COLOR": "1",
               "SAGEMAKER_EMU_PARENT_PID": str(os.getpid()),  # the guard dies with us, however early
               # AIPerf's dataset files go in the job's directory, which goes with the emulator's
               # state: by default they stay behind in /tmp and ~/.cache/aiperf, one set per run
               "AIPERF_DATASET_MMAP_BASE_PATH": str(running.work / "mmap"),
               "AIPERF_DATASET_MMAP_CACHE_ENABLED": "false"}
        with open(running.log, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "sagemaker_emu.worker.guard", "--", *argv],
                                    cwd=running.work, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while proc.poll() is None:
                if running.stop.wait(0.1):
                    proc.send_signal(signal.SIGTERM)  # the guard asks AIPerf's group to stop
                    try:
                        proc.wait(STOP_GRACE_S)
                    except subprocess.TimeoutExpired:
                        proc.send_signal(signal.SIGTERM)  # a second time: the guard kills the group
                    break
            return proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()

    @staticmethod
    def _last_line(path: Path) -> str:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1][:500] if lines else "no output"


SUMMARY_METRICS = ("time_to_first_token", "inter_token_latency", "request_latency")
SUMMARY_STATS = ("avg", "p50", "p90", "p99")


def _summary(path: Path) -> dict[str, Any] | None:
    """The percentiles in AIPerf's `profile_export_aiperf.json` that the live view charts, or
    None when it has none (every request failed, say: the archive holds what AIPerf wrote)."""
    try:
        export = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(export, dict):
        return None
    summary: dict[str, Any] = {}
    for metric in SUMMARY_METRICS:
        values = export.get(metric)
        if isinstance(values, dict):
            summary[metric] = {"unit": values.get("unit", "ms"),
                               **{s: values[s] for s in SUMMARY_STATS if isinstance(values.get(s), (int, float))}}
    throughput = export.get("request_throughput")
    if isinstance(throughput, dict) and isinstance(throughput.get("avg"), (int, float)):
        summary["request_throughput"] = {"unit": throughput.get("unit", "requests/sec"), "avg": throughput["avg"]}
    return summary or None

"""Runs AI benchmark jobs: one thread per job, told of each by the control plane's events
(BenchmarkJobStarted, BenchmarkJobStopping, wired by app.py), reporting each job's end through
`Jobs` (the store's `benchmark_ended`).

SageMaker runs NVIDIA AIPerf for a job. The emulator runs the `aiperf` command it finds (on the
PATH, or `SAGEMAKER_EMU_AIPERF`); without it, the job fails with a FailureReason that says how
to install it, never an error of the call that created it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from typing import Any, Protocol

log = logging.getLogger("sagemaker_emu.benchmarks")

INSTALL = ("NVIDIA AIPerf is not installed where sagemaker-emu can run it: pip install 'sagemaker-emu[aiperf]' "
           "(or set SAGEMAKER_EMU_AIPERF to an aiperf command), then run the job again.")


class Jobs(Protocol):
    """What the runner tells the control plane (control/store.py's Backends)."""

    def benchmark_ended(self, region: str, account: str, name: str, failure: str | None = None,
                        stopped: bool = False) -> None: ...


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
    def workload(self) -> dict[str, Any]: ...

    @property
    def output(self) -> str: ...

    @property
    def log_group(self) -> str: ...

    @property
    def log_stream(self) -> str: ...


def aiperf_command() -> str | None:
    """The aiperf executable to run, or None."""
    return os.environ.get("SAGEMAKER_EMU_AIPERF") or shutil.which("aiperf")


class BenchmarkRunner:
    def __init__(self, jobs: Jobs) -> None:
        self.jobs = jobs
        self._lock = threading.Lock()
        self._stops: dict[tuple[str, str, str], threading.Event] = {}  # (region, account, name) -> stop

    def started(self, job: JobView) -> None:
        """A job was created (called with the store's lock held: the work goes to a thread)."""
        stop = threading.Event()
        with self._lock:
            self._stops[(job.region, job.account, job.name)] = stop
        threading.Thread(target=self._run, args=(job, stop), daemon=True, name=f"benchmark-{job.name}").start()

    def stopping(self, region: str, account: str, name: str) -> None:
        """StopAIBenchmarkJob: its load ends, and the job is reported Stopped."""
        with self._lock:
            stop = self._stops.get((region, account, name))
        if stop is not None:
            stop.set()

    def reset(self) -> None:
        """Stop every job's load (the store forgets the jobs themselves)."""
        with self._lock:
            stops, self._stops = list(self._stops.values()), {}
        for stop in stops:
            stop.set()

    def _run(self, job: JobView, stop: threading.Event) -> None:
        failure: str | None = None
        try:
            if aiperf_command() is None:
                failure = INSTALL
            else:
                failure = ("Running AIPerf is not emulated yet (issue 29): the job's control plane is, and its "
                           "load is next.")
        except Exception as exc:  # never a job left InProgress by our own fault
            log.exception("benchmark job %s failed inside sagemaker-emu", job.name)
            failure = f"The job failed inside sagemaker-emu: {exc}"
        finally:
            with self._lock:
                self._stops.pop((job.region, job.account, job.name), None)
        self.jobs.benchmark_ended(job.region, job.account, job.name, failure, stopped=stop.is_set())

"""InvokeEndpointAsync: a queue per endpoint, drained into the same pipeline as InvokeEndpoint.

A call is accepted at once (202, with where its result will be); the request waits in its
endpoint's queue, and runs when the endpoint has room: `MaxConcurrentInvocationsPerInstance`
for each instance it has now (none while it has scaled to zero: requests then wait). The
answer goes to `<S3OutputPath>/<id>.out`, a failure to `<S3FailurePath>/<id>-error.out`, and
an SNS notification in SageMaker's shape to the configured topics. Inline bodies are spooled
to disk while they wait, so a long queue costs files, not memory.
"""

from __future__ import annotations

import base64
import collections
import datetime
import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sagemaker_emu.errors import EmuError, InvalidInput, NotServing
from sagemaker_emu.runtime.api import Directory, ResultStore, Target
from sagemaker_emu.bodies import FileBody
from sagemaker_emu.runtime.invoke import Runtime
from sagemaker_emu.runtime.request import InvokeRequest

log = logging.getLogger("sagemaker_emu.async")

DEFAULT_CONCURRENCY_PER_INSTANCE = 4  # SageMaker "chooses an optimal value"; ours, recorded in decisions.md
DEFAULT_TTL_S = 21600  # RequestTTLSeconds: 6 hours, SageMaker's default and maximum
DEFAULT_INVOCATION_TIMEOUT_S = 900  # InvocationTimeoutSeconds: SageMaker's default
# NotificationConfig.IncludeInferenceResponseIn: the topics whose notification carries the answer
# itself, when it is at most 128 KB (AWS's limit); the shape is our choice (docs/decisions.md).
INCLUDE_IN = {"SuccessTopic": "SUCCESS_NOTIFICATION_TOPIC", "ErrorTopic": "ERROR_NOTIFICATION_TOPIC"}
MAX_INCLUDED_RESPONSE = 128 * 1024
MAX_INPUT_BYTES = 1024 ** 3  # SageMaker's asynchronous payload limit: 1 GB
BACKLOG_SAMPLE_S = 1.0  # how often the backlog metrics are sampled (AWS: every minute)
NOT_ASYNC = "Endpoint {name} of account {account} is not an asynchronous inference endpoint: its endpoint " \
            "configuration has no AsyncInferenceConfig. Use InvokeEndpoint instead."
NO_INPUT = "Either InputLocation or Body must be specified."
EXPIRED = "The request expired: it waited in the queue longer than its RequestTTLSeconds ({ttl} s)."
DELETED = "Endpoint {name} was deleted before the request ran."


@dataclass
class AsyncRequest:
    """What InvokeEndpointAsync received (its protocol's members)."""

    endpoint_name: str
    region: str
    account: str | None = None  # whose endpoint (None: the emulator's default account)
    body: bytes | None = None
    input_location: str | None = None
    content_type: str | None = None
    accept: str | None = None
    custom_attributes: str | None = None
    inference_id: str | None = None
    output_extension: str | None = None  # S3OutputPathExtension
    filename: str | None = None
    ttl_s: int | None = None
    timeout_s: int | None = None


@dataclass
class Routed:
    """A request an inference router placed on this endpoint's queue (runtime/router_async.py):
    the router's locations and time to live, and what to tell it."""

    output_location: str
    failure_location: str
    expires: float  # the router's time to live, on the queue's clock
    done: Callable[["Job", str | None], None]  # it ran: None, or why it failed
    left: Callable[["Job"], None]  # it left the queue without starting (the endpoint went)


@dataclass
class Job:
    request: AsyncRequest
    inference_id: str
    output_location: str
    failure_location: str
    notifications: dict[str, Any]
    received: float  # wall time, for the notification
    expires: float  # on the queue's clock
    spooled: Path | None  # the input, on disk while it waits or runs (an inline body, or S3's copy)
    routed: Routed | None = None


@dataclass
class Accepted:
    inference_id: str
    output_location: str
    failure_location: str


def join_location(*parts: str | None) -> str:
    """An S3 location from a base path, an extension and a file name (any may be missing)."""
    return "/".join(p.strip("/") if i else p.rstrip("/") for i, p in enumerate(parts) if p)


def _included(body: bytes) -> dict[str, str]:
    """The answer as a notification carries it: text as is, anything else in base64."""
    try:
        return {"content": body.decode("utf-8"), "encoding": "UTF-8"}
    except UnicodeDecodeError:
        return {"content": base64.b64encode(body).decode("ascii"), "encoding": "BASE64"}


def iso_time(when: float) -> str:
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Queue:
    def __init__(self) -> None:
        self.jobs: collections.deque[Job] = collections.deque()
        self.running = 0
        self.stopped = False
        self.thread: threading.Thread | None = None


class AsyncInvocations:
    def __init__(self, runtime: Runtime, directory: Directory, results: ResultStore, spool_dir: Path,
                 clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.directory = directory
        self.results = results
        self.spool_dir = spool_dir
        self.clock = clock
        self.wall = wall
        self._queues: dict[tuple[str, str, str], _Queue] = {}  # by (region, endpoint, account)
        self._cond = threading.Condition()
        self._sampler = threading.Thread(target=self._sample, daemon=True, name="async-backlog")
        self._sampler.start()

    # ------------------------------------------------------------ the call

    def submit(self, request: AsyncRequest) -> Accepted:
        job = self.place(request)
        return Accepted(job.inference_id, job.output_location, job.failure_location)

    def place(self, request: AsyncRequest, routed: Routed | None = None) -> Job:
        """Queue the request (an inference router's, with `routed`); the job as queued."""
        target = self.directory.serving(request.region, request.endpoint_name, request.account)
        config = target.async_config
        if config is None:
            raise InvalidInput(NOT_ASYNC.format(name=target.name, account=target.account))
        if request.input_location is None and not request.body:
            raise InvalidInput(NO_INPUT)
        output = config.get("OutputConfig", {})
        inference_id = request.inference_id or str(uuid.uuid4())
        base = output.get("S3OutputPath")
        job = Job(
            request=request, inference_id=inference_id,
            output_location=join_location(base, request.output_extension, request.filename or f"{inference_id}.out"),
            failure_location=join_location(output.get("S3FailurePath") or base, request.output_extension,
                                   f"{inference_id}-error.out"),
            notifications=output.get("NotificationConfig", {}), received=self.wall(),
            expires=self.clock() + (request.ttl_s or DEFAULT_TTL_S), spooled=None, routed=routed)
        if routed is not None:  # every destination writes where the router said
            job.output_location, job.failure_location = routed.output_location, routed.failure_location
            job.expires = routed.expires
        request.account = target.account  # the queue's, the spool's and each attempt's
        if request.input_location is None:
            job.spooled = self._spool_path(request)
            job.spooled.write_bytes(request.body or b"")
        request.body = None  # the queue keeps the file, not the bytes
        per_instance = config.get("ClientConfig", {}).get("MaxConcurrentInvocationsPerInstance",
                                                           DEFAULT_CONCURRENCY_PER_INSTANCE)
        with self._cond:
            key = (request.region, target.name, target.account)
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue()
                queue.thread = threading.Thread(target=self._dispatch, args=(key, queue, per_instance),
                                                daemon=True, name=f"async-{target.name}")
                queue.thread.start()
            queue.jobs.append(job)
            self._cond.notify_all()
        return job

    def withdraw(self, job: Job) -> bool:
        """Take a job off its queue if it has not started (True); never one that has."""
        request = job.request
        with self._cond:
            queue = self._queues.get((request.region, request.endpoint_name, request.account or ""))
            if queue is None or job not in queue.jobs:
                return False
            queue.jobs.remove(job)
            return True

    def _spool_dir(self, region: str, endpoint_name: str, account: str | None) -> Path:
        return self.spool_dir / f"{account}" / region / endpoint_name

    def _spool_path(self, request: AsyncRequest) -> Path:
        path = self._spool_dir(request.region, request.endpoint_name, request.account) / f"{uuid.uuid4().hex}.in"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def depth(self, region: str, endpoint_name: str, account: str) -> dict[str, int]:
        """Requests waiting and running (for /_emu and the backlog metrics)."""
        queue = self._queues.get((region, endpoint_name, account))
        return {"queued": len(queue.jobs), "running": queue.running} if queue else {"queued": 0, "running": 0}

    def _sample(self) -> None:
        """Every second, each queue's backlog as SageMaker's async metrics (an alarm on
        HasBacklogWithoutCapacity is how AWS scales an async endpoint up from zero)."""
        while True:
            time.sleep(BACKLOG_SAMPLE_S)
            with self._cond:
                queues = [(key, len(q.jobs) + q.running, q.jobs[0].received if q.jobs else None)
                          for key, q in self._queues.items()]
            for (region, name, account), size, oldest in queues:
                try:
                    target = self.directory.serving(region, name, account)
                    instances = sum(len(target.fleet.instances(v.name)) for v in target.variants)
                except InvalidInput:
                    instances = 0
                age = self.wall() - oldest if oldest is not None else 0.0
                self.runtime.metrics.backlog(region, name, size, instances, age)

    # ------------------------------------------------------------ draining

    def _room(self, key: tuple[str, str, str], per_instance: int) -> int | None:
        """How many may run at once now; None when the endpoint is gone."""
        try:
            target = self.directory.serving(*key)
        except NotServing:  # Updating is serving; anything else waits
            return 0
        except InvalidInput:
            return None
        return per_instance * sum(len(target.fleet.instances(v.name)) for v in target.variants)

    def _dispatch(self, key: tuple[str, str, str], queue: _Queue, per_instance: int) -> None:
        while True:
            with self._cond:
                if queue.stopped:
                    return
                if not queue.jobs:
                    self._cond.wait()
                    continue
            room = self._room(key, per_instance)  # not under our condition: it takes the store's lock
            with self._cond:
                if queue.stopped:
                    return
                if room is None:  # deleted: nothing will run what is left, and each gets its outcome
                    dropped = self._drop(key, queue)
                    threading.Thread(target=self._fail_all, args=(dropped, DELETED.format(name=key[1])),
                                     daemon=True, name=f"async-deleted-{key[1]}").start()
                    return
                if not queue.jobs or queue.running >= room:
                    # the instance count changes outside this queue (scaling): look again soon
                    self._cond.wait(0.1)
                    continue
                job = queue.jobs.popleft()
                queue.running += 1
            threading.Thread(target=self._run, args=(queue, job), daemon=True,
                             name=f"async-{key[1]}-{job.inference_id[:8]}").start()

    def _run(self, queue: _Queue, job: Job) -> None:
        request = job.request
        try:
            if self.clock() > job.expires:
                self._failed(job, EXPIRED.format(ttl=request.ttl_s or DEFAULT_TTL_S), b"")
                return
            if job.spooled is None:  # the input from S3, to a file: up to 1 GB, never in memory
                job.spooled = self._spool_path(request)
                try:
                    self.results.download(request.input_location or "", job.spooled, MAX_INPUT_BYTES)
                except LookupError as exc:
                    self._failed(job, str(exc), str(exc).encode())
                    return
            body = FileBody(job.spooled, job.spooled.stat().st_size)
            answer = job.spooled.with_suffix(".out")  # the answer, to a file as it arrives: up to 1 GB too
            try:
                result = self.runtime.invoke(InvokeRequest(
                    endpoint_name=request.endpoint_name, body=body, region=request.region, account=request.account,
                    content_type=request.content_type, accept=request.accept,
                    custom_attributes=request.custom_attributes, inference_id=job.inference_id,
                    timeout=float(request.timeout_s or DEFAULT_INVOCATION_TIMEOUT_S)), answer_to=answer)
            except EmuError as exc:
                self._failed(job, exc.message, exc.message.encode())
                return
            job.spooled.unlink(missing_ok=True)
            self.results.write(job.output_location, result.body, result.content_type)
            included = result.body if not isinstance(result.body, FileBody) else (
                result.body.head(MAX_INCLUDED_RESPONSE) if result.body.length <= MAX_INCLUDED_RESPONSE else None)
            answer.unlink(missing_ok=True)  # the files are gone before anyone hears of the result
            self._notify(job, "SuccessTopic", "Completed",
                         {"contentType": result.content_type, "outputLocation": job.output_location}, body=included)
            if job.routed is not None:
                job.routed.done(job, None)
        except Exception:  # S3 or SNS failed under us: never a dead queue, and say so where we still can
            log.exception("async inference %s of %s failed", job.inference_id, request.endpoint_name)
            self._failed_quietly(job, "The request failed inside sagemaker-emu; its log has the details.")
        finally:
            if job.spooled:
                job.spooled.unlink(missing_ok=True)
                job.spooled.with_suffix(".out").unlink(missing_ok=True)
            with self._cond:
                queue.running -= 1
                self._cond.notify_all()

    def _failed(self, job: Job, reason: str, body: bytes) -> None:
        log.info("async inference %s of %s failed: %s", job.inference_id, job.request.endpoint_name, reason[:200])
        self.results.write(job.failure_location, body, "text/plain")
        self._notify(job, "ErrorTopic", "Failed", {"failureLocation": job.failure_location}, reason, body)
        if job.routed is not None:
            job.routed.done(job, reason)

    def _failed_quietly(self, job: Job, reason: str) -> None:
        """`_failed`, where writing the failure may itself fail (S3 or SNS gone)."""
        try:
            self._failed(job, reason, reason.encode())
        except Exception as exc:
            log.warning("async inference %s of %s: its failure could not be written either: %s", job.inference_id,
                        job.request.endpoint_name, exc)

    def _notify(self, job: Job, topic: str, status: str, response: dict, reason: str | None = None,
                body: bytes | None = b"") -> None:
        """`body`: the answer, for the topics that include it; None when it is too large to."""
        arn = job.notifications.get(topic)
        if not arn:
            return
        included = INCLUDE_IN[topic] in job.notifications.get("IncludeInferenceResponseIn", ())
        request = job.request
        message = {
            "awsRegion": request.region, "eventTime": iso_time(self.wall()), "receivedTime": iso_time(job.received),
            "invocationStatus": status,
            **({"failureReason": reason} if reason is not None else {}),
            "requestParameters": {k: v for k, v in (
                ("accept", request.accept), ("contentType", request.content_type),
                ("customAttributes", request.custom_attributes), ("endpointName", request.endpoint_name),
                ("inputLocation", request.input_location)) if v is not None},
            "responseParameters": response,
            "inferenceId": job.inference_id, "eventVersion": "1.0", "eventSource": "aws:sagemaker",
            "eventName": "InferenceResult",
        }
        if included and body is not None and len(body) <= MAX_INCLUDED_RESPONSE:
            message["responseBody"] = _included(body)
        self.results.notify(arn, message)

    # ------------------------------------------------------------ teardown

    def _drop(self, key: tuple[str, str, str], queue: _Queue) -> list[Job]:
        """Under the condition: the queue ends, and its waiting requests with it (returned)."""
        queue.stopped = True
        for job in queue.jobs:
            if job.spooled:
                job.spooled.unlink(missing_ok=True)
        dropped = list(queue.jobs)
        queue.jobs.clear()
        self._queues.pop(key, None)
        self._cond.notify_all()
        return dropped

    def forget(self, endpoint: Target) -> None:
        """The endpoint is gone: each request still waiting fails, with a failure object and the
        ErrorTopic's notification, so that every accepted request has an outcome (written on a
        thread of its own: thousands may be waiting)."""
        with self._cond:
            key = (endpoint.region, endpoint.name, endpoint.account)
            queue = self._queues.get(key)
            dropped = self._drop(key, queue) if queue is not None else []
        shutil.rmtree(self._spool_dir(endpoint.region, endpoint.name, endpoint.account), ignore_errors=True)
        if dropped:
            threading.Thread(target=self._fail_all, args=(dropped, DELETED.format(name=endpoint.name)), daemon=True,
                             name=f"async-deleted-{endpoint.name}").start()

    def _fail_all(self, jobs: list[Job], reason: str) -> None:
        for job in jobs:
            if job.routed is not None:  # not started: its router moves it on
                job.routed.left(job)
            else:
                self._failed_quietly(job, reason)

    def reset(self) -> None:
        with self._cond:
            for key, queue in list(self._queues.items()):
                self._drop(key, queue)
        shutil.rmtree(self.spool_dir, ignore_errors=True)

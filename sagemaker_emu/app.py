"""The composition root: `build(config)` makes every long-lived part once and wires them.

The store (control/) runs the deployer (fleet/) and tells the runtime when an endpoint is
deleted; the runtime reads the store through its `Directory` seam; the front doors get what
they serve as arguments. Nothing reads its collaborators from a global or a config key.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from sagemaker_emu.benchmarks.runner import BenchmarkRunner
from sagemaker_emu.accounts import Accounts
from sagemaker_emu import arns, emu_api
from sagemaker_emu.autoscaling.backend import AutoScaling
from sagemaker_emu.autoscaling.operations import operations as autoscaling_operations
from sagemaker_emu.clock import Clock
from sagemaker_emu.cloudwatch.alarms import AlarmAction, notification
from sagemaker_emu.cloudwatch.backend import CloudWatch
from sagemaker_emu.cloudwatch.operations import operations as cloudwatch_operations
from sagemaker_emu.cloudwatch_logs.operations import operations as logs_operations
from sagemaker_emu.cloudwatch_logs.store import LogStore
from sagemaker_emu.config import Config
from sagemaker_emu.events import Events
from sagemaker_emu.control.capacity import SageMakerCapacity
from sagemaker_emu.control.registry import OPERATIONS
from sagemaker_emu.control.quotas import Quotas
from sagemaker_emu.fleet.instance_capacity import InstanceCapacity
from sagemaker_emu.ui.state import LiveState
from sagemaker_emu.control.events import BenchmarkJobStarted, BenchmarkJobStopping, ComponentDeleted, EndpointDeleted
from sagemaker_emu.control.store import Backends, Guardrails
from sagemaker_emu.fleet import spawn
from sagemaker_emu.fleet.fleet import HealthChecks, ProcessDeployer
from sagemaker_emu.fleet.images import ImageMap
from sagemaker_emu.fleet.usage import UsageSampler
from sagemaker_emu.neighbours.clients import NeighbourClients
from sagemaker_emu.neighbours.embedded import SERVICES, EmbeddedServices
from sagemaker_emu.neighbours.results import S3SnsResults
from sagemaker_emu.neighbours.s3 import S3ModelData
from sagemaker_emu.metrics import Metrics
from sagemaker_emu.protocol import json11, openai, rest
from sagemaker_emu.protocol.errors import router_error_type
from sagemaker_emu.protocol.rpc import RpcService
from sagemaker_emu.protocol.services import ServiceRouter
from sagemaker_emu.routing.strategies import strategy_for
from sagemaker_emu.runtime.async_queue import AsyncInvocations
from sagemaker_emu.runtime.capture import DataCapture
from sagemaker_emu.runtime.invoke import Runtime
from sagemaker_emu.runtime.cross_region import CrossRegionCaps
from sagemaker_emu.runtime.router_async import RouterAsync
from sagemaker_emu.runtime.router_health import RouterHealth
from sagemaker_emu.runtime.routers import RouterRuntime
from sagemaker_emu.schemas.validator import warm
from sagemaker_emu.service_model import region_description

# Larger control-plane bodies are refused before they are read (HTTP 413).
MAX_REQUEST_BYTES = 16 * 1024 * 1024
# The HTTP server's limit is S3's largest single PUT, since it serves S3; the server spools a
# body above 512 KiB to a temporary file, and each service refuses what it would not take.
MAX_SERVER_BODY_BYTES = 5 * 1024**3


@dataclass
class Emulator:
    """Every long-lived part of one emulator."""

    config: Config
    backends: Backends  # the control plane's store, per region
    runtime: Runtime
    asynchronous: AsyncInvocations  # InvokeEndpointAsync's queues
    cloudwatch: CloudWatch  # metrics of every invocation, and alarms
    autoscaling: AutoScaling  # Application Auto Scaling's targets and policies
    usage: UsageSampler  # workers' CPU and memory, as the /aws/sagemaker/Endpoints metrics
    log_store: LogStore  # CloudWatch Logs: the workers' output
    wsgi: Callable  # the WSGI application: by service, then the runtime's routes, then Flask's
    app: Flask  # the control plane and /_emu/
    neighbours: NeighbourClients  # how the emulator reaches S3, SNS... (embedded or real)
    embedded: EmbeddedServices
    model_data: S3ModelData
    state_dir: Path
    owns_state_dir: bool
    routers: RouterRuntime | None = None  # what inference routers keep of their destinations
    benchmarks: BenchmarkRunner | None = None  # AI benchmark jobs' load
    capacity: InstanceCapacity | None = None  # how many instances of each type can be had

    def serving_at(self, url: str) -> None:
        """The server listens at `url`: the embedded neighbours are reached there."""
        self.neighbours.own_url = url

    def reset(self) -> None:
        """Delete every resource in every region, stop every fleet, forget sessions, metrics,
        faults, and everything the embedded neighbours hold."""
        self.asynchronous.reset()  # first: no queued request starts on a fleet being stopped
        self.backends.reset()
        self.runtime.reset()
        self.autoscaling.reset()
        self.cloudwatch.reset()
        self.log_store.reset()
        self.embedded.reset()
        self.model_data.clear()
        if self.capacity is not None:
            self.capacity.reset()
        if self.routers is not None:
            self.routers.reset()
        if self.benchmarks is not None:
            self.benchmarks.reset()

    def shutdown(self) -> None:
        """Stop every fleet and remove the state directory if this emulator made it."""
        self.asynchronous.reset()
        self.usage.stop()
        self.log_store.stop()
        self.autoscaling.stop()
        self.cloudwatch.stop()
        self.backends.reset()
        if self.benchmarks is not None:
            self.benchmarks.reset()
        if self.owns_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)


def build(config: Config | None = None, credentials: tuple[str, str] | None = None) -> Emulator:
    """`credentials`: a key pair the server accepts, for the emulator's calls to itself."""
    config = config or Config()
    state_dir = Path(config.state_dir or tempfile.mkdtemp(prefix="sagemaker-emu-"))
    neighbours = NeighbourClients(config.region, {"s3": config.s3_endpoint} if config.s3_endpoint else {},
                                  credentials=credentials)
    model_data = S3ModelData(neighbours, state_dir / "s3-cache")
    clock = Clock(config.clock_speed)
    deployer = ProcessDeployer(
        state_dir,
        image_map=ImageMap.load(config.image_map) if config.image_map else None,
        seed=config.seed,
        stop_grace=config.stop_grace,
        drain_timeout=config.model_timeout,
        router_factory=strategy_for,
        health=HealthChecks(config.health_interval, config.health_failures),
        model_roots=[Path(r) for r in (config.model_roots if config.model_roots is not None else (Path.cwd(),))],
        objects=model_data,
        serverless_idle_s=config.serverless_idle_seconds,
        multi_model_cache=config.multi_model_cache,
        capacity=InstanceCapacity.parse(config.capacity),
        wall=clock.wall,
        launcher=_launcher(config),
    )
    events = Events()
    cloudwatch = CloudWatch(config.account, clock, events)
    backends = Backends(config.account, deployer, Quotas.parse(config.quotas), events,
                        Guardrails(alarm_state=cloudwatch.state, wall=clock.wall),
                        min_transition=config.min_transition_seconds, min_deleting=config.min_deleting_seconds)
    results = S3SnsResults(neighbours)
    capture = DataCapture(results, seed=config.seed)
    runtime = Runtime(backends, seed=config.seed, model_timeout=config.model_timeout, capture=capture,
                      metrics=Metrics(sink=cloudwatch))
    asynchronous = AsyncInvocations(runtime, backends, results, state_dir / "async")
    # what others keep per endpoint or component goes with it
    events.subscribe(EndpointDeleted, lambda deleted: runtime.forget(deleted.endpoint))
    events.subscribe(EndpointDeleted, lambda deleted: asynchronous.forget(deleted.endpoint))
    caps = CrossRegionCaps(clock.wall)
    benchmarks = BenchmarkRunner(backends, results, lambda: neighbours.own_url,
                                 lambda account: credentials or (account, "sagemaker-emu"), state_dir / "benchmarks")
    events.subscribe(BenchmarkJobStarted, lambda started: benchmarks.started(started.job))
    events.subscribe(BenchmarkJobStopping, lambda stop: benchmarks.stopping(stop.region, stop.account, stop.name))
    events.subscribe(EndpointDeleted, lambda deleted: caps.forget(deleted.endpoint.arn))
    events.subscribe(ComponentDeleted, lambda deleted: runtime.forget_component(deleted.endpoint_name,
                                                                                deleted.component))

    warm(OPERATIONS)  # build every schema now, not on a user's first call
    warm(["InvokeEndpoint", "InvokeEndpointWithResponseStream"], "sagemaker-runtime")
    autoscaling = AutoScaling(config.account, clock, cloudwatch, SageMakerCapacity(backends))
    usage = UsageSampler(lambda: [(b.region, name, fleet) for b in backends.all() for name, fleet in b.fleets()],
                         cloudwatch.record).start()
    events.subscribe(AlarmAction, autoscaling.run_action)
    events.subscribe(AlarmAction, functools.partial(_notify, results))
    log_store = LogStore(lambda: [(b.region, name, created, components, deployer.log_files(b.fleet_key(name)))
                                  for b in backends.all() for name, created, components in b.names()],
                         benchmarks.log_groups).start()
    own = {"monitoring": RpcService("cloudwatch", cloudwatch_operations(cloudwatch), config.region),
           "logs": RpcService("logs", logs_operations(log_store, config.account), config.region),
           "application-autoscaling": RpcService("application-autoscaling", autoscaling_operations(autoscaling),
                                                 config.region)}
    for service in own.values():
        warm(service.operations, service.service)
    app = Flask("sagemaker_emu")
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    # SageMaker's own calls: the runtime's routes first (the hot path skips Flask), then the
    # OpenAI-compatible path, then the control plane and /_emu on Flask; the other services by
    # their signing name
    accounts = Accounts.of_config(config)
    health = RouterHealth(clock.wall)  # what each inference router has seen of its destinations
    routers = RouterRuntime(runtime, backends, health, caps, router_error_type)
    sagemaker = rest.RuntimeAPI(runtime, config, openai.OpenAIAPI(runtime, config, app, accounts), asynchronous,
                                routers, accounts,
                                RouterAsync(asynchronous, backends, results, clock.wall))
    embedded = EmbeddedServices(config.account)
    served = {s for s in SERVICES if neighbours.external(s) is None}  # a real endpoint replaces ours
    wsgi = ServiceRouter(sagemaker,
                         lambda service: own.get(service) or (embedded.app(service) if service in served else None))
    emulator = Emulator(config, backends, runtime, asynchronous, cloudwatch, autoscaling, usage, log_store, wsgi, app,
                        neighbours, embedded, model_data, state_dir, owns_state_dir=config.state_dir is None,
                        routers=routers, benchmarks=benchmarks, capacity=deployer.capacity)
    app.register_blueprint(emu_api.blueprint(backends, runtime, emulator.reset, asynchronous.depth, log_store.lines,
                                             health.states, deployer.capacity,
                                             LiveState(backends, runtime.metrics, cloudwatch, autoscaling,
                                                       deployer.capacity.view, clock.now, benchmarks.summary)))
    app.register_error_handler(HTTPException, _http_error)
    app.register_blueprint(json11.blueprint(backends, config, accounts))
    return emulator


def _launcher(config: Config) -> spawn.Launcher:
    """Where instance processes run: this machine, or a Ray cluster's nodes (imported only then:
    Ray is an optional extra)."""
    if config.fleet == "ray":
        from sagemaker_emu.fleet.ray_nodes import RayNodes

        return RayNodes(config.ray_address or os.environ.get("RAY_ADDRESS") or "auto")
    return spawn.Local(config.worker_start)


def _notify(results: S3SnsResults, action: AlarmAction) -> None:
    """An alarm's action that names an SNS topic: CloudWatch's notification, published there."""
    if arns.service_of(action.arn) == "sns":
        alarm = action.alarm
        subject, message = notification(alarm, alarm.arn.split(":")[4], region_description(alarm.region))
        results.notify(action.arn, message, subject)


def _http_error(exc: HTTPException):
    """Paths that are neither AWS calls nor /_emu/ answer JSON, never an HTML page."""
    return jsonify({"message": exc.description}), exc.code

"""The slow part of each endpoint transition, on its own background thread.

An operation moves the endpoint to Creating, Updating or Deleting (in the store) and hands
the fleet work here: start a fleet, rescale one, stop one. Nothing here takes the store's
lock or sets a status; each function reports its result to the store (`deployed`,
`rescaled`, `deleted`), which publishes it and wakes waiting DescribeEndpoint calls.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from sagemaker_emu.control.resources import Deployment, Endpoint, InferenceComponent, Variant
from sagemaker_emu.control.store import Backend
from sagemaker_emu.fleet.api import ComponentPlan, Copies, DeploymentFailed, Fleet, ServerlessPlan

log = logging.getLogger("sagemaker_emu.lifecycle")


def run_in_background(target, *args) -> None:
    threading.Thread(target=target, args=args, daemon=True, name=f"lifecycle-{target.__name__}").start()


def hold(backend: Backend, since: float, cancel: threading.Event | None = None, deleting: bool = False) -> None:
    """Let a transition last at least `--min-transition-seconds` (a reset cuts it short), so
    code that forgets a waiter fails here as it would on AWS; Deleting at least
    `--min-deleting-seconds` too, so code that describes what it has just deleted sees it."""
    floor = max(backend.min_transition, backend.min_deleting) if deleting else backend.min_transition
    remaining = since + floor - backend.clock()
    if remaining > 0:
        (cancel or threading.Event()).wait(remaining)


def deploy(backend: Backend, endpoint: Endpoint, updating: bool = False) -> None:
    """Bring up the endpoint's pending deployment (CreateEndpoint, or UpdateEndpoint)."""
    pending = _pending(endpoint)
    fleet: Fleet | None = None
    failure = None
    try:
        fleet = backend.deployer.start(endpoint.name, [v.plan() for v in pending.variants], pending.cancel,
                                       backend.fleet_key(endpoint.name))
    except DeploymentFailed as exc:
        failure = str(exc)[:1024]
    except Exception as exc:  # a bug in a deployer must not leave the endpoint Creating forever
        log.exception("deployment of %s failed", endpoint.name)
        failure = f"Internal error while deploying the endpoint: {exc}"[:1024]
    if failure is not None and updating:
        log.warning("update of endpoint %s failed; the old configuration keeps serving: %s", endpoint.name, failure)
    elif failure is not None:
        log.warning("endpoint %s Failed: %s", endpoint.name, failure)
    elif updating and endpoint.deployment_config and fleet is not None:
        reason = _shift_traffic(backend, endpoint, fleet, endpoint.deployment_config)
        if reason is not None:  # an alarm tripped, or time ran out: the old fleet takes every call again
            log.warning("update of endpoint %s rolled back: %s", endpoint.name, reason)
            _roll_back(backend, endpoint, endpoint.deployment_config, reason)
            fleet.stop(drain=True)
            fleet, failure = None, reason
    hold(backend, pending.started, pending.cancel)
    retired = backend.deployed(endpoint, fleet, failure)
    if retired is not None:
        retired.stop(drain=True)  # new requests already go elsewhere; let the old ones finish


BAKE_CHECK_S = 0.1  # how often alarms are looked at while baking (wall seconds)


def _shift_traffic(backend: Backend, endpoint: Endpoint, fleet: Fleet, config: dict) -> str | None:
    """A guarded update (DeploymentConfig): shift traffic to the new fleet in steps
    (ALL_AT_ONCE, CANARY, LINEAR; RollingUpdatePolicy's batches as steps too), baking after
    each while watching the AutoRollbackConfiguration alarms. The rollback reason, or None."""
    blue_green = config.get("BlueGreenUpdatePolicy")
    rolling = config.get("RollingUpdatePolicy")
    alarms = [a["AlarmName"] for a in (config.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
    pending = _pending(endpoint)
    green_instances = sum(v.instance_count for v in pending.variants) or 1
    deadline = None
    if rolling is not None:
        steps = _linear(_share(rolling["MaximumBatchSize"], green_instances))
        wait, final_wait = rolling.get("WaitIntervalInSeconds", 0), rolling.get("WaitIntervalInSeconds", 0)
        if "MaximumExecutionTimeoutInSeconds" in rolling:  # counted from UpdateEndpoint, fleet start included
            limit = rolling["MaximumExecutionTimeoutInSeconds"]
            elapsed = backend.clock() - pending.started
            deadline = (time.monotonic() + backend.guardrails.wall(limit) - elapsed, limit)
    else:
        routing = (blue_green or {}).get("TrafficRoutingConfiguration", {"Type": "ALL_AT_ONCE"})
        kind = routing["Type"]
        if kind == "CANARY":
            steps = [min(1.0, _share(routing["CanarySize"], green_instances)), 1.0]
        elif kind == "LINEAR":
            steps = _linear(_share(routing["LinearStepSize"], green_instances))
        else:
            steps = [1.0]
        wait = routing.get("WaitIntervalInSeconds", 0)
        final_wait = wait + (blue_green or {}).get("TerminationWaitInSeconds", 0)
    for index, share in enumerate(dict.fromkeys(steps)):
        if not backend.shifted(endpoint, fleet, share, "ActivatingTraffic"):
            return None
        backend.shifted(endpoint, fleet, share, "Baking")
        last = index == len(dict.fromkeys(steps)) - 1
        reason = _bake(backend, endpoint, final_wait if last else wait, alarms, deadline)
        if reason is not None:
            return reason
    return None


def _roll_back(backend: Backend, endpoint: Endpoint, config: dict, reason: str) -> None:
    """Traffic back to the old fleet: at once, or with a RollingUpdatePolicy's
    RollbackMaximumBatchSize in batches, WaitIntervalInSeconds apart (docs/decisions.md)."""
    rolling = config.get("RollingUpdatePolicy") or {}
    pending = _pending(endpoint)
    share = pending.share
    if "RollbackMaximumBatchSize" in rolling and share > 0:
        old_instances = sum(v.instance_count for v in endpoint.variants) or 1
        step = max(_share(rolling["RollbackMaximumBatchSize"], old_instances), 0.01)
        wait = backend.guardrails.wall(rolling.get("WaitIntervalInSeconds", 0))
        while share > step + 1e-9:
            share -= step
            backend.rolling_back(endpoint, reason, share)
            if pending.cancel.wait(wait):
                break
    backend.rolling_back(endpoint, reason, 0.0)


def _pending(endpoint: Endpoint) -> Deployment:
    assert endpoint.pending is not None, "an endpoint being deployed or updated has a pending deployment"
    return endpoint.pending


def _share(size: dict, instances: int) -> float:
    """CanarySize / LinearStepSize / MaximumBatchSize as a share of the new fleet's capacity."""
    return size["Value"] / 100 if size["Type"] == "CAPACITY_PERCENT" else size["Value"] / instances


def _linear(step: float) -> list[float]:
    step = max(step, 0.01)
    count = int(1 / step) + (1 / step > int(1 / step))
    return [min(1.0, step * i) for i in range(1, count + 1)]


def _bake(backend: Backend, endpoint: Endpoint, seconds: float, alarms: list[str],
          timeout: tuple[float, int] | None = None) -> str | None:
    """Wait `seconds` of service time; the reason to roll back if one of `alarms` is in ALARM
    or the deployment's time limit (`timeout`: its monotonic deadline, and the limit) passes."""
    deadline = time.monotonic() + backend.guardrails.wall(seconds)
    cancel = _pending(endpoint).cancel
    while True:
        reason = _rollback_reason(backend, alarms, timeout, "traffic was shifting")
        if reason is not None:
            return reason
        remaining = deadline - time.monotonic()
        if remaining <= 0 or cancel.wait(min(BAKE_CHECK_S, remaining)):
            return None


def _rollback_reason(backend: Backend, alarms: list[str], timeout: tuple[float, int] | None,
                     doing: str) -> str | None:
    """Why a guarded update must go back now: one of `alarms` is in ALARM, or its time limit
    (`timeout`: the monotonic deadline, and MaximumExecutionTimeoutInSeconds) has passed."""
    for name in alarms:
        if backend.guardrails.alarm_state(backend.region, name) == "ALARM":
            return f"Rolling back the update: alarm {name} went into ALARM while {doing}."
    if timeout is not None and time.monotonic() >= timeout[0]:
        return f"Rolling back the update: it did not finish within MaximumExecutionTimeoutInSeconds ({timeout[1]} s)."
    return None


def serverless_plan(variant: Variant, change: dict) -> ServerlessPlan:
    """The variant's ServerlessConfig with ServerlessUpdateConfig's members applied."""
    config = {**variant.spec["ServerlessConfig"], **change["ServerlessUpdateConfig"]}
    return ServerlessPlan(config["MaxConcurrency"], config.get("ProvisionedConcurrency", 0))


def rescale(backend: Backend, endpoint: Endpoint, changes: dict[str, dict]) -> None:
    """Apply UpdateEndpointWeightsAndCapacities' capacities through the fleet.

    A capacity that cannot be reached leaves that variant as it was and says why in
    FailureReason; the endpoint goes back to InService either way."""
    scaled: dict[str, int] = {}
    failure = None
    for name, change in changes.items():
        count = change.get("DesiredInstanceCount")
        if endpoint.fleet is None:
            continue
        try:
            if "ServerlessUpdateConfig" in change:
                variant = endpoint.variant(name)
                assert variant is not None, "UpdateEndpointWeightsAndCapacities checked the names"
                endpoint.fleet.set_serverless(name, serverless_plan(variant, change))
            if count is None:
                continue
            endpoint.fleet.scale(name, count)
            scaled[name] = count
        except Exception as exc:
            log.warning("scaling %s/%s to %d failed: %s", endpoint.name, name, count, exc)
            failure = str(exc)[:1024]
    hold(backend, endpoint.modified)
    backend.rescaled(endpoint, changes, scaled, failure)


def delete(backend: Backend, endpoint: Endpoint) -> None:
    if endpoint.fleet is not None:
        endpoint.fleet.stop(drain=True)
    hold(backend, endpoint.modified, deleting=True)
    backend.deleted(endpoint)


def set_copies(backend: Backend, ic: InferenceComponent, fleet: Fleet, plan: ComponentPlan, count: int) -> None:
    """Start or stop copies of an inference component (Create, UpdateInferenceComponentRuntimeConfig)."""
    copies: Copies | None = None
    failure = None
    try:
        copies = fleet.set_copies(plan, count)
    except DeploymentFailed as exc:
        failure = str(exc)[:1024]
    except Exception as exc:  # a bug must not leave the component Creating forever
        log.exception("copies of %s failed", ic.name)
        failure = f"Internal error while placing the inference component: {exc}"[:1024]
    if failure is not None:
        log.warning("inference component %s: %s", ic.name, failure)
    hold(backend, ic.modified)
    backend.copies_set(ic, copies, failure)


@dataclass(frozen=True)
class Rollback:
    """When an inference component update goes back: its AutoRollbackConfiguration alarms,
    watched while each batch bakes, or its MaximumExecutionTimeoutInSeconds (`timeout`: the
    monotonic deadline, and the limit); and how (the old specification's plan, RollbackMaximumBatchSize)."""

    plan: ComponentPlan
    alarms: list[str]
    batch: int
    timeout: tuple[float, int] | None = None


def roll(backend: Backend, ic: InferenceComponent, fleet: Fleet, target: InferenceComponent | None, plan: ComponentPlan,
         count: int, batch: int, wait_s: float, rollback: Rollback | None = None) -> None:
    """UpdateInferenceComponent with a new specification (`target`, run as `plan`): a rolling
    replacement of the copies; with `rollback`, an alarm in ALARM while a batch bakes brings
    the old specification back on every copy."""
    copies: Copies | None = None
    failure = None
    tripped: list[str] = []

    def halt() -> bool:
        assert rollback is not None
        reason = _rollback_reason(backend, rollback.alarms, rollback.timeout, "copies were being replaced")
        if reason is not None:
            tripped.append(reason)
        return reason is not None

    try:
        copies = fleet.replace_copies(plan, count, batch, wait_s, halt if rollback else None)
        if copies is None and tripped and rollback is not None:
            failure = tripped[0]
            log.warning("update of inference component %s rolled back: %s", ic.name, failure)
            copies, target = fleet.replace_copies(rollback.plan, count, rollback.batch, 0.0), None
        elif copies is None:
            failure = "The update stopped before it finished."
    except DeploymentFailed as exc:
        failure = str(exc)[:1024]
    except Exception as exc:
        log.exception("update of %s failed", ic.name)
        failure = f"Internal error while updating the inference component: {exc}"[:1024]
    if copies is None:
        log.warning("update of inference component %s failed; the old copies keep serving: %s", ic.name, failure)
    hold(backend, ic.modified)
    backend.copies_set(ic, copies, failure, rolled_to=target if copies is not None else None)


def adapter_ready(backend: Backend, ic: InferenceComponent) -> None:
    """An adapter needs no copies of its own: its base's copies apply it per call."""
    hold(backend, ic.modified)
    backend.copies_set(ic, Copies(0), None)


def remove_component(backend: Backend, ic: InferenceComponent, fleet: Fleet | None) -> None:
    if fleet is not None:
        fleet.remove_component(ic.name)
    hold(backend, ic.modified, deleting=True)
    backend.component_deleted(ic)

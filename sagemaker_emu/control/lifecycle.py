"""Endpoint status transitions, each run on its own background thread.

Creating -> InService | Failed; Updating -> InService (the old fleet serves until the new
one is ready); Deleting -> gone. Every change notifies the backend's condition so that
waiting DescribeEndpoint calls see it at once.
"""

from __future__ import annotations

import logging
import threading

from sagemaker_emu.control.resources import Deployment, Endpoint, Status
from sagemaker_emu.fleet.api import DeploymentFailed
from sagemaker_emu.control.store import Backend

log = logging.getLogger("sagemaker_emu.lifecycle")


def run_in_background(target, *args) -> None:
    threading.Thread(target=target, args=args, daemon=True, name=f"lifecycle-{target.__name__}").start()


def _start_fleet(backend: Backend, endpoint: Endpoint, pending: Deployment):
    try:
        return backend.deployer.start(endpoint.name, [v.plan() for v in pending.variants], pending.cancel), None
    except DeploymentFailed as exc:
        return None, str(exc)[:1024]
    except Exception as exc:  # a bug in a deployer must not leave the endpoint Creating forever
        log.exception("deployment of %s failed", endpoint.name)
        return None, f"Internal error while deploying the endpoint: {exc}"[:1024]


def _hold(backend: Backend, since: float, cancel: threading.Event | None = None) -> None:
    """Let a transition last at least `--min-transition-seconds` (a reset cuts it short), so
    code that forgets a waiter fails here as it would on AWS."""
    remaining = since + backend.min_transition - backend.clock()
    if remaining > 0:
        (cancel or threading.Event()).wait(remaining)


def _still_current(backend: Backend, endpoint: Endpoint) -> bool:
    return backend.endpoints.get(endpoint.name.lower()) is endpoint


def create(backend: Backend, endpoint: Endpoint) -> None:
    fleet, failure = _start_fleet(backend, endpoint, endpoint.pending)
    _hold(backend, endpoint.pending.started, endpoint.pending.cancel)
    with backend.lock:
        if not _still_current(backend, endpoint):  # reset while we were starting
            if fleet is not None:
                fleet.stop()
            return
        if fleet is None:
            log.warning("endpoint %s Failed: %s", endpoint.name, failure)
            endpoint.status = Status.FAILED
            endpoint.failure_reason = failure
        else:
            endpoint.fleet = fleet
            endpoint.variants = endpoint.pending.variants
            endpoint.status = Status.IN_SERVICE
        endpoint.pending = None
        endpoint.modified = backend.now()
        backend.changed.notify_all()


def update(backend: Backend, endpoint: Endpoint) -> None:
    fleet, failure = _start_fleet(backend, endpoint, endpoint.pending)
    _hold(backend, endpoint.pending.started, endpoint.pending.cancel)
    old = None
    with backend.lock:
        if not _still_current(backend, endpoint):
            if fleet is not None:
                fleet.stop()
            return
        if fleet is None:
            # The old configuration keeps serving; the failure is reported on the endpoint.
            log.warning("update of endpoint %s failed; the old configuration keeps serving: %s",
                        endpoint.name, failure)
            endpoint.failure_reason = failure
        else:
            old = endpoint.fleet
            endpoint.fleet = fleet
            endpoint.variants = endpoint.pending.variants
            endpoint.config_name = endpoint.pending.config.name
            endpoint.spec = endpoint_extras(endpoint.pending.config.spec)
            endpoint.failure_reason = None
        endpoint.pending = None
        endpoint.status = Status.IN_SERVICE
        endpoint.modified = backend.now()
        backend.changed.notify_all()
    if old is not None:
        old.stop(drain=True)  # new requests already go to the new fleet; let the old finish


def rescale(backend: Backend, endpoint: Endpoint, changes: dict[str, dict]) -> None:
    """Apply UpdateEndpointWeightsAndCapacities: weights at once, capacities via the fleet.

    A capacity that cannot be reached leaves that variant as it was and says why in
    FailureReason; the endpoint goes back to InService either way."""
    scaled: dict[str, int] = {}
    failure = None
    for name, change in changes.items():
        count = change.get("DesiredInstanceCount")
        if count is None or endpoint.fleet is None:
            continue
        try:
            endpoint.fleet.scale(name, count)
            scaled[name] = count
        except Exception as exc:
            log.warning("scaling %s/%s to %d failed: %s", endpoint.name, name, count, exc)
            failure = str(exc)[:1024]
    _hold(backend, endpoint.modified)
    with backend.lock:
        for name, change in changes.items():
            variant = endpoint.variant(name)
            if variant is None:
                continue
            if "DesiredWeight" in change:
                variant.weight = float(change["DesiredWeight"])
            if name in scaled:
                variant.instance_count = scaled[name]
        endpoint.failure_reason = failure
        endpoint.updating_variants.clear()
        if _still_current(backend, endpoint):
            endpoint.status = Status.IN_SERVICE
            endpoint.modified = backend.now()
        backend.changed.notify_all()


def delete(backend: Backend, endpoint: Endpoint) -> None:
    if endpoint.fleet is not None:
        endpoint.fleet.stop(drain=True)
    _hold(backend, endpoint.modified)
    with backend.lock:
        if _still_current(backend, endpoint):
            backend.forget(endpoint)
        backend.changed.notify_all()


# Endpoint-config members that DescribeEndpoint repeats.
_EXTRAS = ("DataCaptureConfig", "AsyncInferenceConfig", "ExplainerConfig", "MetricsConfig", "CrossRegionTrafficConfig")


def endpoint_extras(config_spec: dict) -> dict:
    return {k: config_spec[k] for k in _EXTRAS if k in config_spec}

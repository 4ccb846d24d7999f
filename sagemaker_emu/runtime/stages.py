"""The endpoint path: the small stages that take an invocation from an endpoint's name to the
instance (or inference-component copy) it is sent to.

Each stage reads the frozen `InvokeRequest`, writes what it found into the call's `Outcome`,
and raises the caller's error in SageMaker's words; one returning False means "nothing to send
to now", and the driver (runtime/invoke.py) routes the call again. Stages read the fleet only
through `fleet/api.py`'s views. `Stages` holds what they share: the control plane's
`Directory`, sessions, faults, metrics and a seeded generator per endpoint.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Callable

from sagemaker_emu.errors import InvalidInput, NotServing, Unavailable
from sagemaker_emu.fleet.api import DeploymentFailed, LoadFailed, TargetNotFound, component_key
from sagemaker_emu.bodies import FileBody
from sagemaker_emu.metrics import Metrics
from sagemaker_emu.routing.strategies import RouteRequest
from sagemaker_emu.runtime import model_errors
from sagemaker_emu.runtime.api import Directory, Target, VariantTarget
from sagemaker_emu.runtime.faults import Faults
from sagemaker_emu.runtime.request import CHAT_PATH, INVOCATIONS_PATH, InvokeRequest, Outcome, ReadyModel
from sagemaker_emu.runtime.sessions import NEW_SESSION, SessionTable

log = logging.getLogger("sagemaker_emu.runtime")

ROUTED_BODY_BYTES = 6 * 1024 * 1024  # what a router reads of a body kept in a file (an async input)
NO_COMPONENT_HEADER = ("Inference Component Name header is required for endpoints to which you plan to deploy "
                       "inference components. Please include Inference Component Name header or consider using "
                       "SageMaker models.")
NO_COPIES = ("Inference Component has no capacity to process this request. ApplicationAutoScaling may be "
             "in-progress (if configured) or try to increase the capacity by invoking "
             "UpdateInferenceComponentRuntimeConfig API.")


class Dice:
    """A seeded generator per endpoint, for its variant weights and a guarded update's share:
    endpoints never wait for each other's draws, and a seeded run repeats each endpoint's."""

    def __init__(self, seed: int | None) -> None:
        self.seed = seed
        self._by_endpoint: dict[tuple[str, str], tuple[random.Random, threading.Lock]] = {}

    def draw(self, target: Target, use: Callable[[random.Random], object]):
        key = (target.region, target.name)
        found = self._by_endpoint.get(key)
        if found is None:
            rng = random.Random(None if self.seed is None else f"{self.seed}/{target.region}/{target.name}")
            found = self._by_endpoint.setdefault(key, (rng, threading.Lock()))
        rng, lock = found
        with lock:
            return use(rng)

    def forget(self, region: str, name: str) -> None:
        self._by_endpoint.pop((region, name), None)

    def clear(self) -> None:
        self._by_endpoint.clear()


class Stages:
    def __init__(self, directory: Directory, metrics: Metrics, sessions: SessionTable, faults: Faults,
                 dice: Dice) -> None:
        self.directory = directory
        self.metrics = metrics
        self.sessions = sessions
        self.faults = faults
        self.dice = dice

    # ------------------------------------------------------------ which endpoint, and what it allows

    def resolve(self, req: InvokeRequest, out: Outcome) -> None:
        """The endpoint the call reaches (a guarded update's new fleet, for its share of calls)."""
        try:
            target = self.directory.serving(req.region, req.endpoint_name, req.account)
        except NotServing:
            out.endpoint_found = True
            raise
        out.endpoint_found = True
        out.path = CHAT_PATH if req.chat else INVOCATIONS_PATH
        if target.green is not None:  # a guarded update is shifting traffic to its new fleet
            share, green = target.green
            if self.dice.draw(target, lambda rng: rng.random() < share):
                target = green
        out.target = target

    def headers(self, req: InvokeRequest, out: Outcome) -> None:
        """Headers the endpoint cannot honour, or must have, refused in SageMaker's words."""
        target = _target(out)
        multi_model = any(target.fleet.multi_model(v.name) is not None for v in target.variants)
        if req.target_model is not None and not multi_model:
            raise InvalidInput(
                f"Endpoint {target.name} is not a multi-model endpoint and does not support target model header."
            )
        if req.target_model is None and multi_model:
            raise InvalidInput(f"Request {req.request_id} is missing a target model header.")
        hostnames = [h for v in target.variants for h in target.fleet.direct_targets(v.name) or ()]
        if hostnames:  # a model of several containers in Direct mode runs the one the call names
            if req.target_container_hostname is None:
                raise InvalidInput(f"Endpoint {target.name} invokes its containers directly: name one with "
                                   f"TargetContainerHostname ({', '.join(sorted(set(hostnames)))}).")
            if req.target_container_hostname not in hostnames:
                raise InvalidInput(f"Endpoint {target.name} has no container with hostname "
                                   f"{req.target_container_hostname}.")
        if target.hosts_components and req.inference_component is None:
            raise InvalidInput(NO_COMPONENT_HEADER)

    # ------------------------------------------------------------ among which instances

    def component(self, req: InvokeRequest, out: Outcome) -> None:
        """An inference component: its copies (or its base's, for an adapter)."""
        if req.inference_component is None:
            return
        target = _target(out)
        component = target.components.get(req.inference_component)
        if component is None:
            raise InvalidInput(f"Inference component {req.inference_component} is not hosted on endpoint {target.name}.")
        out.component = component.name  # failures from here count for it too
        if component.copies == 0:
            out.no_capacity = True
            raise InvalidInput(NO_COPIES)
        if component.served_by != component.name:  # an adapter: its base's copies apply it
            out.adapter = component.name
        out.variant, out.key = component.variant, component_key(component.served_by)

    def session(self, req: InvokeRequest, out: Outcome) -> None:
        """A call in an open session goes to the instance (or copy) that holds it."""
        if req.session_id in (None, NEW_SESSION):
            return
        target = _target(out)
        key = (target.arn, target.created)  # a re-created endpoint does not inherit sessions
        session = self.sessions.find(key, target.name, req.session_id, time.time())
        has_variant = any(v.name == session.variant for v in target.variants)
        instances = target.fleet.instances(session.route)
        instance = next((i for i in instances if i.id == session.instance_id), None)
        if not has_variant or instance is None:  # the instance that held it is gone
            self.sessions.closed(key, req.session_id)
            raise InvalidInput(f"Session {req.session_id} of endpoint {target.name} was lost with its instance.")
        out.variant, out.key, out.candidates, out.instance = session.variant, session.route, (instance,), instance
        out.pool_size = len(instances)

    def variant(self, req: InvokeRequest, out: Outcome) -> None:
        """The production variant: the one named, else drawn by the variants' weights."""
        if out.key:  # a component's or a session's
            return
        chosen = self._choose_variant(req, _target(out))
        out.variant = out.key = chosen.name

    def _choose_variant(self, req: InvokeRequest, target: Target) -> VariantTarget:
        variants = target.variants
        if req.target_variant is not None:
            for v in variants:
                if v.name == req.target_variant:
                    return v
            raise InvalidInput(f"Endpoint {target.name} does not have a production variant named {req.target_variant}.")
        weights = [v.weight for v in variants]
        if sum(weights) <= 0:
            return variants[0]
        return self.dice.draw(target, lambda rng: rng.choices(variants, weights=weights)[0])

    def candidates(self, req: InvokeRequest, out: Outcome) -> bool:
        """The routable instances; a serverless variant scaled to zero starts one within the
        call (its ModelSetupTime). False: none routable now."""
        if out.instance is not None:  # a session's
            return True
        target = _target(out)
        instances = target.fleet.instances(out.key)
        if not instances and target.fleet.serverless(out.key) is not None:
            try:
                seconds = target.fleet.cold_start(out.key)
            except DeploymentFailed as exc:
                raise Unavailable(f"The serverless endpoint {target.name} could not start its model: {exc}"[:1024]) from None
            if seconds is not None:
                log.info("InvokeEndpoint %s variant=%s: cold start took %.2fs", target.name, out.key, seconds)
                self.metrics.setup(target.name, out.key, seconds, target.region)
            instances = target.fleet.instances(out.key)
        if not instances:
            return False
        out.pool_size = len(instances)
        multi = target.fleet.multi_model(out.key)
        if multi is not None and req.target_model is not None:  # a model already loaded somewhere is sent there
            instances = multi.holding(instances, req.target_model) or instances
        out.candidates = instances
        return True

    def pick(self, req: InvokeRequest, out: Outcome) -> None:
        """The instance the variant's (or component's) routing strategy picks."""
        router = out.router = _target(out).fleet.router(out.key)
        body = req.body.head(ROUTED_BODY_BYTES) if isinstance(req.body, FileBody) else req.body
        route = router.prepare(RouteRequest(body, req.prefix_aware_id, chat=req.chat), out.candidates)  # outside its lock
        if out.instance is None:  # a session's is chosen already
            out.instance = router.choose(route, out.candidates)
        out.route = route
        out.sent_to = (out.instance.id, out.instance.pid)  # formatted only if the call fails

    # ------------------------------------------------------------ on the instance

    def multi_model(self, req: InvokeRequest, out: Outcome) -> None:
        """A multi-model endpoint: load the call's TargetModel on the instance unless it is
        there (the call waits: ModelLoadingWaitTime), and hold it there until the call ends."""
        target, instance = _target(out), out.instance
        multi = target.fleet.multi_model(instance.variant) if instance is not None else None
        if multi is None or instance is None or req.target_model is None:
            return
        try:
            loaded = multi.ensure(instance, req.target_model)
        except TargetNotFound as exc:
            raise InvalidInput(model_errors.no_model_data(multi.prefix + req.target_model, str(exc))) from None
        except LoadFailed as exc:
            raise model_errors.model_error(target, exc.status, exc.message.encode()) from None
        self.metrics.model_loading(target.region, target.name, instance.variant, loaded)
        if not loaded.hit:
            log.info("InvokeEndpoint %s: loaded %s on %s in %.1fms", target.name, req.target_model, instance.id,
                     loaded.wait_s * 1000)
        out.path = f"/models/{loaded.name}/invoke"
        out.model = ReadyModel(multi, instance, loaded)

    def inject_faults(self, req: InvokeRequest, out: Outcome) -> None:
        """Injected latency, throttling or ModelError (/_emu/faults)."""
        target = _target(out)
        injected = self.faults.before_dispatch(target.name, out.variant)
        if injected is not None:  # an injected ModelError, as if the container had answered it
            raise model_errors.model_error(target, injected.status, injected.message.encode())

    def path(self) -> tuple[Callable[[InvokeRequest, Outcome], bool | None], ...]:
        """The endpoint path, in order."""
        return (self.resolve, self.headers, self.component, self.session, self.variant, self.candidates, self.pick,
                self.multi_model, self.inject_faults)


def _target(out: Outcome) -> Target:
    assert out.target is not None, "resolve runs first"
    return out.target

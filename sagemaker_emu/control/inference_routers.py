"""Inference routers' control plane: `(backend, params, call) -> result dict`, run inside
`Backend.run` like control/operations.py.

A router is checked while it is Creating: an endpoint of the wrong kind for its routing target
(an asynchronous one in a real-time target, or the reverse) fails it, naming the destination,
and a destination that cannot be checked is accepted. An update is checked before it is
accepted and applies in full or not at all. DescribeInferenceRouter works out each
destination's RoutingStatus when it is called. Invocations come with the router runtime.
"""

from __future__ import annotations

import copy
from typing import Any

from sagemaker_emu import arns
from sagemaker_emu.control import endpoint_policies, lifecycle
from sagemaker_emu.control.listing import list_page
from sagemaker_emu.control.operations import set_tags
from sagemaker_emu.control.registry import Call, operation
from sagemaker_emu.control.resources import InferenceRouter, Status
from sagemaker_emu.control.store import Backend
from sagemaker_emu.errors import InvalidInput, ServiceError

MAX_ROUTERS = 100  # per account and Region (docs/decisions.md: AWS publishes no default quota we could find)
CHANGING = (Status.CREATING, Status.UPDATING, Status.DELETING)


def _not_found(backend: Backend, name: str) -> ServiceError:
    return ServiceError("ResourceNotFound", f'Could not find inference router "{backend.arn("inference-router", name)}".')


def _router(backend: Backend, name: str) -> InferenceRouter:
    router = backend.inference_routers.get(name.lower())
    if router is None:
        raise _not_found(backend, name)
    return router


def _conflict(router: InferenceRouter, doing: str) -> ServiceError:
    return ServiceError("ConflictException", f'Cannot {doing} inference router "{router.arn}" while it is '
                                             f"{router.status.value}. Describe the router, and then try again.")


def _check_targets(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rules the model states in prose: target names unique, each destination once per target,
    InstancePoolOrder for asynchronous targets only. RoutingStatus is ignored on input."""
    names = [t["Name"] for t in targets]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"Routing target names must be unique within the inference router: {', '.join(repeated)}.")
    checked = []
    for target in targets:
        arn_list = [d["ResourceArn"] for d in target["Destinations"]]
        twice = sorted({a for a in arn_list if arn_list.count(a) > 1})
        if twice:
            raise InvalidInput(f"Routing target {target['Name']} lists a destination more than once: {', '.join(twice)}.")
        if target.get("RoutingPreference") == "InstancePoolOrder" and "AsyncInferenceConfig" not in target:
            raise InvalidInput(f"Routing target {target['Name']}: RoutingPreference InstancePoolOrder is supported only "
                               "for asynchronous routing targets (with AsyncInferenceConfig).")
        kept = copy.deepcopy(target)
        kept["Destinations"] = [{"ResourceArn": a} for a in arn_list]
        checked.append(kept)
    return checked


def _same_partition(backend: Backend, targets: list[dict[str, Any]]) -> None:
    for target in targets:
        for destination in target["Destinations"]:
            found = arns.parse(destination["ResourceArn"])
            if found is None or found.partition != arns.partition(backend.region):
                raise InvalidInput(f"Destination {destination['ResourceArn']} is not in the inference router's "
                                   f"partition ({arns.partition(backend.region)}).")


OTHER = "cannot be checked"  # another account's destination that its policy does not let us describe


def destination(backend: Backend, arn: str, router_arn: str) -> Any | None:
    """The endpoint or inference component an ARN names, in any Region and account; None when
    it does not exist; OTHER when it is another account's and that endpoint's policy does not
    let this account describe it (then whether it exists cannot be told either). Other Regions
    and accounts are read without their lock (dictionary lookups and attributes): a router in
    one Region and one in another must never wait on each other."""
    found = arns.parse(arn)
    if found is None:
        return None
    kind, _, name = found.resource.partition("/")
    owner = backend.peer(found.region, found.account)
    resource = owner.tables.get(kind, {}).get(name.lower()) if owner is not None else None
    if found.account == backend.account:
        return resource
    endpoint = resource if kind == "endpoint" or resource is None else owner.endpoints.get(  # type: ignore[union-attr]
        resource.endpoint_name.lower())
    policy = getattr(endpoint, "policy", None)
    return resource if endpoint_policies.allows(policy, backend.account, endpoint_policies.DESCRIBE, arn,
                                                router_arn) else OTHER


def routing_status(backend: Backend, arn: str, asynchronous: bool, router_arn: str) -> str:
    """Routable, Unroutable or Unknown, as DescribeInferenceRouter documents them."""
    resource = destination(backend, arn, router_arn)
    if resource is OTHER:
        return "Unknown"
    if resource is None or resource.status not in (Status.IN_SERVICE, Status.UPDATING):
        return "Unroutable"
    if hasattr(resource, "desired_copies"):  # an inference component: copies, or a base that has some
        found = arns.parse(arn)
        assert found is not None
        owner = backend.peer(found.region, found.account)
        serving = owner.inference_components.get(  # type: ignore[union-attr]
            resource.base.lower(), resource) if resource.base else resource
        if serving.current_copies == 0 or asynchronous:
            return "Unroutable"
        return "Routable"
    return "Routable" if ("AsyncInferenceConfig" in resource.spec) == asynchronous else "Unroutable"


def wrong_kind(backend: Backend, targets: list[dict[str, Any]], router_arn: str) -> str | None:
    """Why a checked destination cannot serve its target (an asynchronous endpoint in a
    real-time target, or the reverse; for InstancePoolOrder, an endpoint without the target's
    instance pools), else None; destinations that cannot be checked pass."""
    for target in targets:
        asynchronous = "AsyncInferenceConfig" in target
        pools_seen: list[list[str]] = []
        for d in target["Destinations"]:
            resource = destination(backend, d["ResourceArn"], router_arn)
            if resource is None or resource is OTHER:
                continue
            is_async = hasattr(resource, "spec") and "AsyncInferenceConfig" in resource.spec \
                and not hasattr(resource, "desired_copies")
            if is_async != asynchronous:
                kind = "an asynchronous" if is_async else "a real-time"
                wanted = "asynchronous" if asynchronous else "real-time"
                return (f"Destination {d['ResourceArn']} of routing target {target['Name']} is {kind} "
                        f"{'endpoint' if not hasattr(resource, 'desired_copies') else 'inference component'}; "
                        f"the {wanted} routing target needs {'asynchronous' if asynchronous else 'real-time'} "
                        "destinations.")
            if target.get("RoutingPreference") == "InstancePoolOrder":
                pools = _pool_order(resource)
                if len(pools) < 2 or (pools_seen and pools != pools_seen[0]):
                    return (f"Destination {d['ResourceArn']} of routing target {target['Name']} must be an endpoint "
                            "whose instance pools list the same two or more instance types, in the same priority "
                            "order, as every other destination's (RoutingPreference InstancePoolOrder).")
                pools_seen.append(pools)
    return None


def _pool_order(resource: Any) -> list[str]:
    """An endpoint's instance types by pool priority (its first variant's), [] for anything else."""
    if hasattr(resource, "desired_copies"):
        return []
    variants = resource.variants or (resource.pending.variants if resource.pending else [])
    return [p["InstanceType"] for p in variants[0].pools] if variants else []


@operation
def create_inference_router(backend: Backend, params: dict, call: Call) -> dict:
    name = params["InferenceRouterName"]
    token = params.get("ClientToken")
    existing = backend.inference_routers.get(name.lower())
    if existing is not None:
        if token is not None and existing.client_token == token:  # the same request again: its answer
            return {"InferenceRouterArn": existing.arn}
        raise ServiceError("ResourceAlreadyExists", f'Cannot create already existing inference router "{existing.arn}".')
    if len(backend.inference_routers) >= MAX_ROUTERS:
        raise ServiceError("ResourceLimitExceeded", f"The account-level service limit 'Number of inference routers' is "
                                                    f"{MAX_ROUTERS} routers, with current utilization of "
                                                    f"{len(backend.inference_routers)} routers.")
    targets = _check_targets(params["RoutingTargets"])
    _same_partition(backend, targets)
    now = backend.now()
    router = InferenceRouter(name=name, arn=backend.arn("inference-router", name), created=now, modified=now,
                             status=Status.CREATING, targets=targets, client_token=token)
    set_tags(backend, router.arn, params.get("Tags", []))
    backend.inference_routers[name.lower()] = router
    lifecycle.run_in_background(_created, backend, router)
    return {"InferenceRouterArn": router.arn}


def _created(backend: Backend, router: InferenceRouter) -> None:
    """The checks of a router being created; then InService, or Failed with the reason."""
    lifecycle.hold(backend, router.modified)
    backend.router_settled(router, lambda current: wrong_kind(current, router.targets, router.arn))


@operation
def describe_inference_router(backend: Backend, params: dict, call: Call) -> dict:
    router = _router(backend, params["InferenceRouterName"])
    targets = []
    for target in router.targets:
        described = copy.deepcopy(target)
        asynchronous = "AsyncInferenceConfig" in target
        described["Destinations"] = [{"ResourceArn": d["ResourceArn"],
                                      "RoutingStatus": routing_status(backend, d["ResourceArn"], asynchronous, router.arn)}
                                     for d in target["Destinations"]]
        targets.append(described)
    out: dict[str, Any] = {"InferenceRouterName": router.name, "InferenceRouterArn": router.arn,
                           "RoutingTargets": targets, "Status": router.status.value,
                           "CreationTime": router.created, "LastModifiedTime": router.modified}
    if router.status_reason:
        out["StatusReason"] = router.status_reason
    return out


@operation
def update_inference_router(backend: Backend, params: dict, call: Call) -> dict:
    router = _router(backend, params["InferenceRouterName"])
    if router.status in CHANGING:
        raise _conflict(router, "update")
    targets = _check_targets(params["RoutingTargets"])
    _same_partition(backend, targets)
    refused = wrong_kind(backend, targets, router.arn)
    if refused is not None:  # applied in full or not at all
        raise InvalidInput(refused)
    router.targets, router.status_reason = targets, None
    backend.transition(router, Status.UPDATING)
    lifecycle.run_in_background(_updated, backend, router)
    return {"InferenceRouterArn": router.arn}


def _updated(backend: Backend, router: InferenceRouter) -> None:
    lifecycle.hold(backend, router.modified)
    backend.router_settled(router, lambda current: None)  # checked before it was accepted


@operation
def delete_inference_router(backend: Backend, params: dict, call: Call) -> dict:
    router = _router(backend, params["InferenceRouterName"])
    if router.status in CHANGING:
        raise _conflict(router, "delete")
    backend.transition(router, Status.DELETING)
    lifecycle.run_in_background(_deleted, backend, router)
    return {}


def _deleted(backend: Backend, router: InferenceRouter) -> None:
    lifecycle.hold(backend, router.modified, deleting=True)
    backend.router_deleted(router)


@operation
def list_inference_routers(backend: Backend, params: dict, call: Call) -> dict:
    return list_page(backend.inference_routers.values(), params, lambda r: {
        "InferenceRouterName": r.name, "InferenceRouterArn": r.arn, "CreationTime": r.created,
        "LastModifiedTime": r.modified}, "InferenceRouters")

"""Inference-component operations: `(backend, params, call) -> result dict`, run inside
`Backend.run` like control/operations.py. The copies themselves are the fleet's
(`Fleet.set_copies`); control/lifecycle.py asks for them on a background thread.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import math
import time
from typing import Any

from sagemaker_emu.control import lifecycle
from sagemaker_emu.control.listing import list_page
from sagemaker_emu.control.operations import set_tags
from sagemaker_emu.control.registry import Call, operation
from sagemaker_emu.control.resources import InferenceComponent, Status, Variant
from sagemaker_emu.control.store import Backend
from sagemaker_emu.errors import AlreadyExists, InvalidInput


def _check_specification(spec: dict[str, Any] | None, params: dict[str, Any]) -> None:
    if spec is None:
        raise InvalidInput("Specification must be specified.")
    if "BaseInferenceComponentName" in spec:
        if "ComputeResourceRequirements" in spec:
            raise InvalidInput("An adapter inference component uses the compute resources of its base inference "
                               "component; do not specify ComputeResourceRequirements.")
        return
    if "ModelName" not in spec and "Container" not in spec:
        raise InvalidInput("Specification must specify ModelName or Container.")
    if "ComputeResourceRequirements" not in spec:
        raise InvalidInput("ComputeResourceRequirements must be specified for an inference component "
                           "that is not an adapter.")
    if "RuntimeConfig" not in params:
        raise InvalidInput("RuntimeConfig must be specified for an inference component that is not an adapter.")


def _specifications(params: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
    """(Specification, or Specifications' first entry; Specifications), each entry checked, and
    with several entries each naming a different InstanceType."""
    specs = params.get("Specifications")
    if specs is None:
        return params.get("Specification"), None
    if "Specification" in params:
        raise InvalidInput("Specify either Specification or Specifications for an inference component, not both.")
    for spec in specs:
        _check_specification(spec, params)
        if "BaseInferenceComponentName" in spec:
            raise InvalidInput("An adapter inference component takes one Specification, not Specifications.")
    types = [s.get("InstanceType") for s in specs]
    if len(specs) > 1 and None in types:
        raise InvalidInput("Each entry of Specifications must specify InstanceType when there are several.")
    repeated = sorted({t for t in types if t is not None and types.count(t) > 1})
    if repeated:
        raise InvalidInput(f"Specifications must name each instance type once; {', '.join(repeated)} is named "
                           "more than once.")
    return specs[0], specs


def _check_types(specs: list[dict[str, Any]] | None, variant: Variant, endpoint_arn: str) -> None:
    """Every instance type Specifications names is one the variant's instances can be."""
    kinds = [p["InstanceType"] for p in variant.pools] or [variant.instance_type]
    for spec in specs or []:
        if spec.get("InstanceType", kinds[0]) not in kinds:
            raise InvalidInput(f'Specifications names instance type {spec["InstanceType"]}, which variant '
                               f'"{variant.name}" of endpoint "{endpoint_arn}" does not have ({", ".join(kinds)}).')


def _models(backend: Backend, specs: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The model of each Specifications entry that names an InstanceType and a ModelName."""
    return {s["InstanceType"]: copy.deepcopy(backend.model(s["ModelName"])) if "ModelName" in s else None
            for s in specs or [] if "InstanceType" in s}


@operation
def create_inference_component(backend: Backend, params: dict, call: Call) -> dict:
    name = params["InferenceComponentName"]
    arn = backend.arn("inference-component", name)
    if name.lower() in backend.inference_components:
        raise AlreadyExists("inference component", arn)
    spec, specs = _specifications(params)
    _check_specification(spec, params)
    endpoint = backend.endpoint(params["EndpointName"])
    if endpoint.status not in (Status.IN_SERVICE, Status.UPDATING) or endpoint.fleet is None:
        raise InvalidInput(f'Cannot create inference component "{arn}" on endpoint "{endpoint.arn}" '
                           f"because the endpoint is not in service (status: {endpoint.status.value}).")
    hosts = [v for v in endpoint.variants if v.hosts_components]
    variant_name = params.get("VariantName") or (hosts[0].name if len(hosts) == 1 else None)
    variant = endpoint.variant(variant_name) if variant_name else None
    if variant is None:
        raise InvalidInput(f'Could not find variant "{params.get("VariantName", "")}" in endpoint "{endpoint.arn}".')
    if not variant.hosts_components:
        raise InvalidInput(f'Variant "{variant.name}" of endpoint "{endpoint.arn}" runs model '
                           f'"{variant.models[0].name}"; inference components need a variant without ModelName.')
    assert spec is not None, "_check_specification refuses none"
    _check_types(specs, variant, endpoint.arn)
    base = _base_of(backend, spec, endpoint.name)
    model = backend.model(spec["ModelName"]) if "ModelName" in spec and base is None else None
    now = backend.now()
    ic = InferenceComponent(
        name=name, arn=arn, endpoint_name=endpoint.name, endpoint_arn=endpoint.arn,
        variant_name=base.variant_name if base else variant.name, created=now, modified=now,
        status=Status.CREATING, spec=copy.deepcopy(spec), model=copy.deepcopy(model),
        desired_copies=0 if base else params["RuntimeConfig"]["CopyCount"], base=base.name if base else None,
        specifications=copy.deepcopy(specs), type_models=_models(backend, specs))
    set_tags(backend, arn, params.get("Tags", []))
    backend.inference_components[name.lower()] = ic
    if base is not None:  # its base's copies serve it: nothing to start
        lifecycle.run_in_background(lifecycle.adapter_ready, backend, ic)
    else:
        lifecycle.run_in_background(lifecycle.set_copies, backend, ic, endpoint.fleet,
                                    ic.plan(variant.spec.get("RoutingConfig") or {}), ic.desired_copies)
    return {"InferenceComponentArn": arn}


def _base_of(backend: Backend, spec: dict[str, Any], endpoint_name: str) -> InferenceComponent | None:
    """The base of an adapter inference component (None for others), checked."""
    name = spec.get("BaseInferenceComponentName")
    if name is None:
        return None
    base = backend.inference_component(name)
    if base.endpoint_name != endpoint_name:
        raise InvalidInput(f'Base inference component "{base.arn}" is not on endpoint "{endpoint_name}".')
    if base.base is not None:
        raise InvalidInput(f'Inference component "{base.arn}" is an adapter and cannot be the base of another.')
    return base


@operation
def describe_inference_component(backend: Backend, params: dict, call: Call) -> dict:
    ic = backend.inference_component(params["InferenceComponentName"])
    return {
        "InferenceComponentName": ic.name,
        "InferenceComponentArn": ic.arn,
        "EndpointName": ic.endpoint_name,
        "EndpointArn": ic.endpoint_arn,
        "VariantName": ic.variant_name,
        "FailureReason": ic.failure_reason,
        # created with Specifications: a summary per instance type, and no Specification
        **({"Specifications": [_specification_summary(s, ic.created) for s in ic.specifications]}
           if ic.specifications else {"Specification": _specification_summary(ic.spec, ic.created)}),
        "RuntimeConfig": _runtime_config(backend, ic),
        "CreationTime": ic.created,
        "LastModifiedTime": ic.modified,
        "InferenceComponentStatus": ic.status.value,
        "LastDeploymentConfig": ic.last_deployment,
    }


def copy_counts(backend: Backend, ic: InferenceComponent) -> tuple[int, int]:
    """DesiredCopyCount and CurrentCopyCount: an adapter shows those of the base that serves it."""
    shown = backend.inference_components.get(ic.base.lower(), ic) if ic.base else ic
    return shown.desired_copies, shown.current_copies


def _runtime_config(backend: Backend, ic: InferenceComponent) -> dict:
    desired, current = copy_counts(backend, ic)
    return {"DesiredCopyCount": desired, "CurrentCopyCount": current}


def _specification_summary(spec: dict[str, Any], created: float) -> dict:
    out = {k: copy.deepcopy(v) for k, v in spec.items() if k != "Container"}
    container = spec.get("Container")
    if container is not None:
        image = container.get("Image", "")
        summary: dict[str, Any] = {k: copy.deepcopy(v) for k, v in container.items() if k in ("ArtifactUrl", "Environment")}
        if image:
            resolved = image if "@sha256:" in image else f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"
            summary["DeployedImage"] = {"SpecifiedImage": image, "ResolvedImage": resolved, "ResolutionTime": created}
        out["Container"] = summary
    return out


@operation
def list_inference_components(backend: Backend, params: dict, call: Call) -> dict:
    return list_page(backend.inference_components.values(), params, lambda ic: {
        "InferenceComponentName": ic.name, "InferenceComponentArn": ic.arn, "EndpointName": ic.endpoint_name,
        "EndpointArn": ic.endpoint_arn, "VariantName": ic.variant_name, "CreationTime": ic.created,
        "LastModifiedTime": ic.modified, "InferenceComponentStatus": ic.status.value}, "InferenceComponents")


def _updatable(backend: Backend, name: str, adapters: bool = False) -> InferenceComponent:
    """The component an update names, if it can be updated now (an adapter only if `adapters`)."""
    ic = backend.inference_component(name)
    if ic.status != Status.IN_SERVICE:
        raise InvalidInput(f'Cannot update in-progress inference component "{ic.arn}".')
    if ic.base is not None and not adapters:
        raise InvalidInput(f'Inference component "{ic.arn}" is an adapter: it runs on the copies of its base '
                           f'"{ic.base}"; update the base instead.')
    return ic


def _routing(backend: Backend, ic: InferenceComponent) -> dict[str, Any]:
    """The RoutingConfig of the variant whose instances hold the component's copies."""
    variant = backend.endpoint(ic.endpoint_name).variant(ic.variant_name)
    return (variant.spec.get("RoutingConfig") if variant is not None else None) or {}


@operation
def update_inference_component_runtime_config(backend: Backend, params: dict, call: Call) -> dict:
    ic = _updatable(backend, params["InferenceComponentName"])
    ic.desired_copies = params["DesiredRuntimeConfig"]["CopyCount"]
    backend.transition(ic, Status.UPDATING)
    lifecycle.run_in_background(lifecycle.set_copies, backend, ic, backend.endpoint(ic.endpoint_name).fleet,
                                ic.plan(_routing(backend, ic)), ic.desired_copies)
    return {"InferenceComponentArn": ic.arn}


@operation
def delete_inference_component(backend: Backend, params: dict, call: Call) -> dict:
    ic = backend.inference_component(params["InferenceComponentName"])
    if ic.status in (Status.CREATING, Status.UPDATING, Status.DELETING):
        raise InvalidInput(f'Cannot delete in-progress inference component "{ic.arn}".')
    adapters = sorted(a.name for a in backend.inference_components.values() if a.base == ic.name)
    if adapters:
        raise InvalidInput(f'Cannot delete inference component "{ic.arn}" while adapter inference components '
                           f'use it: {", ".join(adapters)}. Delete them first.')
    endpoint = backend.endpoints.get(ic.endpoint_name.lower())
    backend.transition(ic, Status.DELETING)
    fleet = endpoint.fleet if endpoint and ic.base is None else None  # an adapter has no copies of its own
    lifecycle.run_in_background(lifecycle.remove_component, backend, ic, fleet)
    return {}


def _copies_of(size: dict[str, Any], copies: int) -> int:
    """A batch size (COPY_COUNT or CAPACITY_PERCENT of `copies`) in copies, at least one."""
    if size["Type"] == "CAPACITY_PERCENT":
        return max(1, math.ceil(max(copies, 1) * size["Value"] / 100))
    return max(1, size["Value"])


def _batch(policy: dict[str, Any] | None, copies: int) -> tuple[int, float]:
    """Copies replaced per step and the wait between steps, from a RollingUpdatePolicy."""
    if not policy:
        return 1, 0.0  # no policy: one copy at a time, no wait (docs/decisions.md)
    return _copies_of(policy["MaximumBatchSize"], copies), float(policy["WaitIntervalInSeconds"])


def _update_adapter(backend: Backend, ic: InferenceComponent, params: dict) -> dict:
    """An adapter's new specification (its artifact): it starts nothing, its base's copies
    apply it per call, so the update only moves the status."""
    spec = params.get("Specification")
    if ic.base is None:
        raise InvalidInput(f'Inference component "{ic.arn}" is not an adapter; its Specification cannot name '
                           "a BaseInferenceComponentName.")
    if spec is None or spec.get("BaseInferenceComponentName") != ic.base:
        raise InvalidInput(f'Adapter inference component "{ic.arn}" keeps its base: give a Specification with '
                           f'BaseInferenceComponentName "{ic.base}".')
    if "RuntimeConfig" in params:
        raise InvalidInput("An adapter inference component has no copies of its own; RuntimeConfig does not apply.")
    _check_specification(spec, params)
    ic.spec = copy.deepcopy(spec)
    if "DeploymentConfig" in params:
        ic.last_deployment = copy.deepcopy(params["DeploymentConfig"])
    backend.transition(ic, Status.UPDATING)
    lifecycle.run_in_background(lifecycle.adapter_ready, backend, ic)
    return {"InferenceComponentArn": ic.arn}


@operation
def update_inference_component(backend: Backend, params: dict, call: Call) -> dict:
    ic = _updatable(backend, params["InferenceComponentName"], adapters=True)
    spec = params.get("Specification")
    if ic.base is not None or (spec is not None and "BaseInferenceComponentName" in spec):
        return _update_adapter(backend, ic, params)
    spec, specs = _specifications({**params, "RuntimeConfig": params.get("RuntimeConfig",
                                                                         {"CopyCount": ic.desired_copies})})
    if spec is not None:
        _check_specification(spec, {"RuntimeConfig": params.get("RuntimeConfig", {"CopyCount": ic.desired_copies})})
    endpoint = backend.endpoint(ic.endpoint_name)
    variant = endpoint.variant(ic.variant_name)
    if variant is not None:
        _check_types(specs, variant, endpoint.arn)
    model = backend.model(spec["ModelName"]) if spec is not None and "ModelName" in spec else None
    type_models = _models(backend, specs)
    fleet, routing = endpoint.fleet, _routing(backend, ic)
    ic.desired_copies = params.get("RuntimeConfig", {}).get("CopyCount", ic.desired_copies)
    if "DeploymentConfig" in params:
        ic.last_deployment = copy.deepcopy(params["DeploymentConfig"])
    backend.transition(ic, Status.UPDATING)
    if spec is None:  # a copy count only
        lifecycle.run_in_background(lifecycle.set_copies, backend, ic, fleet, ic.plan(routing), ic.desired_copies)
    else:
        target = dataclasses.replace(ic, spec=copy.deepcopy(spec), model=copy.deepcopy(model),
                                     specifications=copy.deepcopy(specs), type_models=type_models)
        deployment = params.get("DeploymentConfig", {})
        policy = deployment.get("RollingUpdatePolicy")
        batch, wait = _batch(policy, ic.current_copies)
        alarms = [a["AlarmName"] for a in (deployment.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
        limit = (policy or {}).get("MaximumExecutionTimeoutInSeconds")
        rollback = lifecycle.Rollback(
            plan=ic.plan(routing), alarms=alarms,
            batch=_copies_of((policy or {}).get("RollbackMaximumBatchSize") or {"Type": "CAPACITY_PERCENT", "Value": 100},
                             ic.desired_copies),
            timeout=(time.monotonic() + backend.guardrails.wall(limit), limit) if limit else None,
        ) if alarms or limit else None
        lifecycle.run_in_background(lifecycle.roll, backend, ic, fleet, target, target.plan(routing),
                                    ic.desired_copies, batch, backend.guardrails.wall(wait), rollback)
    return {"InferenceComponentArn": ic.arn}

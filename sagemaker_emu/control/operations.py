"""One function per control-plane call: `(backend, params, call) -> result dict`.

`params` has already passed schema validation; results are shaped for the wire by the
protocol layer from botocore's output shapes. Each runs inside `Backend.run`, the store's
lock held, so none takes it; status changes go through `backend.transition`.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from sagemaker_emu.control import lifecycle, rules
from sagemaker_emu.control.registry import Call, operation
from sagemaker_emu.control.listing import list_page
from sagemaker_emu.control.resources import (
    Deployment,
    containers,
    Endpoint,
    EndpointConfig,
    Model,
    Status,
    Variant,
)
from sagemaker_emu.control.kinds import KINDS
from sagemaker_emu.control.store import Backend, endpoint_extras
from sagemaker_emu.errors import AlreadyExists, InvalidInput, NotFound

MAX_TAGS = 50


def _spec(params: dict[str, Any], *drop: str) -> dict[str, Any]:
    return {k: copy.deepcopy(v) for k, v in params.items() if k not in drop}


def set_tags(backend: Backend, arn: str, tags: list[dict[str, str]]) -> None:
    current = {t["Key"]: t for t in backend.tags.get(arn.lower(), [])}
    for tag in tags:
        current[tag["Key"]] = {"Key": tag["Key"], "Value": tag.get("Value", "")}
    if len(current) > MAX_TAGS:
        raise InvalidInput(f"A resource can have at most {MAX_TAGS} tags; this request would give it {len(current)}.")
    backend.tags[arn.lower()] = list(current.values())


# ---------------------------------------------------------------- models


@operation
def create_model(backend: Backend, params: dict, call: Call) -> dict:
    name = params["ModelName"]
    if "PrimaryContainer" not in params and not params.get("Containers"):
        raise InvalidInput("Either PrimaryContainer or Containers must be specified.")
    if "PrimaryContainer" in params and params.get("Containers"):
        raise InvalidInput("PrimaryContainer and Containers cannot both be specified.")
    hostnames = [c.get("ContainerHostname") for c in params.get("Containers") or []]
    if (params.get("InferenceExecutionConfig") or {}).get("Mode") == "Direct" and not all(hostnames):
        raise InvalidInput("ContainerHostname must be given for every container when InferenceExecutionConfig "
                           "Mode is Direct: a call names the container it invokes by it.")
    repeated = sorted({h for h in hostnames if h and hostnames.count(h) > 1})
    if repeated:
        raise InvalidInput(f"ContainerHostname must be unique within a model; {', '.join(repeated)} is repeated.")
    arn = backend.arn("model", name)
    if name.lower() in backend.models:
        raise AlreadyExists("model", arn)
    spec = _spec(params, "ModelName", "Tags")
    for container in containers(spec):
        container.setdefault("Mode", "SingleModel")
        container.setdefault("Environment", {})
    spec.setdefault("EnableNetworkIsolation", False)
    set_tags(backend, arn, params.get("Tags", []))
    backend.models[name.lower()] = Model(name=name, arn=arn, created=backend.now(), spec=spec)
    return {"ModelArn": arn}


@operation
def describe_model(backend: Backend, params: dict, call: Call) -> dict:
    m = backend.model(params["ModelName"])
    return {**copy.deepcopy(m.spec), "ModelName": m.name, "ModelArn": m.arn, "CreationTime": m.created}


@operation
def delete_model(backend: Backend, params: dict, call: Call) -> dict:
    m = backend.model(params["ModelName"])
    del backend.models[m.name.lower()]
    backend.tags.pop(m.arn.lower(), None)
    return {}


@operation
def list_models(backend: Backend, params: dict, call: Call) -> dict:
    return list_page(
        backend.models.values(),
        params,
        lambda m: {"ModelName": m.name, "ModelArn": m.arn, "CreationTime": m.created},
        "Models",
    )


# ---------------------------------------------------------------- endpoint configs


@operation
def create_endpoint_config(backend: Backend, params: dict, call: Call) -> dict:
    name = params["EndpointConfigName"]
    rules.check_endpoint_config(params)
    arn = backend.arn("endpoint-config", name)
    if name.lower() in backend.endpoint_configs:
        raise AlreadyExists("endpoint configuration", arn)
    for variant in params["ProductionVariants"] + params.get("ShadowProductionVariants", []):
        for model in [variant.get("ModelName")] + [p.get("ModelNameOverride") for p in variant.get("InstancePools", [])]:
            if model:
                backend.model(model)
    spec = _spec(params, "EndpointConfigName", "Tags")
    for variant in spec["ProductionVariants"] + spec.get("ShadowProductionVariants", []):
        variant["InitialVariantWeight"] = float(variant.get("InitialVariantWeight", 1.0))
    set_tags(backend, arn, params.get("Tags", []))
    backend.endpoint_configs[name.lower()] = EndpointConfig(name=name, arn=arn, created=backend.now(), spec=spec)
    return {"EndpointConfigArn": arn}


@operation
def describe_endpoint_config(backend: Backend, params: dict, call: Call) -> dict:
    c = backend.endpoint_config(params["EndpointConfigName"])
    return {
        **copy.deepcopy(c.spec),
        "EndpointConfigName": c.name,
        "EndpointConfigArn": c.arn,
        "CreationTime": c.created,
    }


@operation
def delete_endpoint_config(backend: Backend, params: dict, call: Call) -> dict:
    # SageMaker accepts this even while an endpoint uses the config (it keeps serving).
    c = backend.endpoint_config(params["EndpointConfigName"])
    del backend.endpoint_configs[c.name.lower()]
    backend.tags.pop(c.arn.lower(), None)
    return {}


@operation
def list_endpoint_configs(backend: Backend, params: dict, call: Call) -> dict:
    return list_page(
        backend.endpoint_configs.values(),
        params,
        lambda c: {"EndpointConfigName": c.name, "EndpointConfigArn": c.arn, "CreationTime": c.created},
        "EndpointConfigs",
    )


# ---------------------------------------------------------------- endpoints


def _plan(backend: Backend, config: EndpointConfig, retained: dict[str, Variant] | None = None,
          exclude: frozenset[str] = frozenset()) -> list[Variant]:
    """The variants a deployment of `config` brings up; models must still exist."""
    now = backend.now()
    plan = []
    for spec in config.variants:
        model = backend.model(spec["ModelName"]) if "ModelName" in spec else None  # None: ICs bring models
        weight = spec["InitialVariantWeight"]
        count = spec.get("InitialInstanceCount", 0)
        old = (retained or {}).get(spec["VariantName"])
        if old is not None:
            if "DesiredWeight" not in exclude:
                weight = old.weight
            if "DesiredInstanceCount" not in exclude and not old.serverless:
                count = old.instance_count
        overrides = {p["ModelNameOverride"]: copy.deepcopy(backend.model(p["ModelNameOverride"]))
                     for p in spec.get("InstancePools", []) if "ModelNameOverride" in p}
        plan.append(Variant(spec=copy.deepcopy(spec), models=[copy.deepcopy(model)] if model else [], weight=weight,
                            instance_count=count, deployed_at=now, overrides=overrides))
    return plan


@operation
def create_endpoint(backend: Backend, params: dict, call: Call) -> dict:
    name = params["EndpointName"]
    arn = backend.arn("endpoint", name)
    if name.lower() in backend.endpoints:
        raise AlreadyExists("endpoint", arn)
    config = backend.endpoint_config(params["EndpointConfigName"])
    variants = _plan(backend, config)
    backend.check_quota((v, v.reserved_instances) for v in variants)
    now = backend.now()
    endpoint = Endpoint(
        name=name,
        arn=arn,
        config_name=config.name,
        created=now,
        modified=now,
        status=Status.CREATING,
        pending=Deployment(config=config, variants=variants, started=now),
        spec=endpoint_extras(config.spec),
        deployment_config=params.get("DeploymentConfig"),
    )
    set_tags(backend, arn, params.get("Tags", []))
    backend.endpoints[name.lower()] = endpoint
    lifecycle.run_in_background(lifecycle.deploy, backend, endpoint)
    return {"EndpointArn": arn}


def _require_in_service(endpoint: Endpoint, action: str) -> None:
    if endpoint.status == Status.FAILED:
        raise InvalidInput(f'Cannot {action} failed endpoint "{endpoint.arn}".')
    if endpoint.status != Status.IN_SERVICE:
        raise InvalidInput(f'Cannot {action} in-progress endpoint "{endpoint.arn}".')


@operation
def update_endpoint(backend: Backend, params: dict, call: Call) -> dict:
    endpoint = backend.endpoint(params["EndpointName"])
    config = backend.endpoint_config(params["EndpointConfigName"])
    _require_in_service(endpoint, "update")
    if backend.components_of(endpoint.name):
        raise InvalidInput(f'sagemaker-emu cannot yet update endpoint "{endpoint.arn}" while it hosts '
                           "inference components.")
    retained = {v.name: v for v in endpoint.variants} if params.get("RetainAllVariantProperties") else None
    exclude = frozenset(p["VariantPropertyType"] for p in params.get("ExcludeRetainedVariantProperties", []))
    variants = _plan(backend, config, retained, exclude)
    backend.check_quota((v, v.reserved_instances) for v in variants)  # both fleets run a while
    endpoint.pending = Deployment(config=config, variants=variants, started=backend.now())
    # Its own DeploymentConfig, or with RetainDeploymentConfig the last one (CreateEndpoint's or
    # the last update's); otherwise the switch is all at once.
    if "DeploymentConfig" in params or not params.get("RetainDeploymentConfig"):
        endpoint.deployment_config = params.get("DeploymentConfig")
    backend.transition(endpoint, Status.UPDATING)
    lifecycle.run_in_background(lifecycle.deploy, backend, endpoint, True)
    return {"EndpointArn": endpoint.arn}


@operation
def update_endpoint_weights_and_capacities(backend: Backend, params: dict, call: Call) -> dict:
    desired = params["DesiredWeightsAndCapacities"]
    endpoint = backend.endpoint(params["EndpointName"])
    _require_in_service(endpoint, "update")
    by_name = {v.name: v for v in endpoint.variants}
    rules.check_weights_and_capacities(
        desired, by_name, endpoint.config_name, {v.name: v.weight for v in endpoint.variants},
        may_scale_to_zero="AsyncInferenceConfig" in endpoint.spec,
    )
    changes = {d["VariantName"]: d for d in desired}
    backend.check_quota((by_name[n], c["DesiredInstanceCount"] - by_name[n].instance_count)
                        for n, c in changes.items() if "DesiredInstanceCount" in c)
    endpoint.updating_variants = changes
    backend.transition(endpoint, Status.UPDATING)
    lifecycle.run_in_background(lifecycle.rescale, backend, endpoint, changes)
    return {"EndpointArn": endpoint.arn}


@operation
def delete_endpoint(backend: Backend, params: dict, call: Call) -> dict:
    endpoint = backend.endpoint(params["EndpointName"])
    if endpoint.status in (Status.CREATING, Status.UPDATING, Status.DELETING):
        raise InvalidInput(f'Cannot delete in-progress endpoint "{endpoint.arn}".')
    if backend.components_of(endpoint.name):
        raise InvalidInput(f'Cannot delete endpoint "{endpoint.arn}" while it hosts inference components; '
                           "delete them first.")
    backend.transition(endpoint, Status.DELETING)
    lifecycle.run_in_background(lifecycle.delete, backend, endpoint)
    return {}


@operation
def describe_endpoint(backend: Backend, params: dict, call: Call) -> dict:
    name = params["EndpointName"]
    if call.waiter and call.waiter_hold > 0:
        # A waiter would sleep 30 s between polls: answer its poll when the transition ends.
        backend.wait_settled(name, call.waiter_hold)
    ep = backend.endpoint(name)
    out: dict[str, Any] = {
        "EndpointName": ep.name,
        "EndpointArn": ep.arn,
        "EndpointConfigName": ep.config_name,
        "EndpointStatus": ep.status.value,
        "CreationTime": ep.created,
        "LastModifiedTime": ep.modified,
        "FailureReason": ep.failure_reason,
        "LastDeploymentConfig": ep.deployment_config,
        **_extras_summary(ep.spec),
    }
    if ep.variants:
        out["ProductionVariants"] = [_variant_summary(v, ep) for v in ep.variants]
    if ep.pending is not None:
        out["PendingDeploymentSummary"] = {
            "EndpointConfigName": ep.pending.config.name,
            "StartTime": ep.pending.started,
            "ProductionVariants": [_pending_summary(v, ep.pending) for v in ep.pending.variants],
        }
    return out


@operation
def list_endpoints(backend: Backend, params: dict, call: Call) -> dict:
    return list_page(
        backend.endpoints.values(),
        params,
        lambda e: {
            "EndpointName": e.name,
            "EndpointArn": e.arn,
            "CreationTime": e.created,
            "LastModifiedTime": e.modified,
            "EndpointStatus": e.status.value,
        },
        "Endpoints",
    )


def _deployed_images(variant: Variant) -> list[dict]:
    images = []
    for model in [*variant.models, *variant.overrides.values()]:
        for container in containers(model.spec):
            image = container.get("Image")
            if image:
                resolved = image if "@sha256:" in image else f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"
                images.append({"SpecifiedImage": image, "ResolvedImage": resolved, "ResolutionTime": variant.deployed_at})
    return images


def instance_counts(v: Variant, ep: Endpoint) -> tuple[int, int]:
    """A variant's CurrentInstanceCount and DesiredInstanceCount (an update in progress is
    heading for the desired one); an inference-component variant under managed scaling has
    as many instances as hold copies."""
    current = len(ep.fleet.placement(v.name)) if v.hosts_components and ep.fleet else v.instance_count
    return current, ep.updating_variants.get(v.name, {}).get("DesiredInstanceCount", current)


def _variant_summary(v: Variant, ep: Endpoint) -> dict:
    desired = ep.updating_variants.get(v.name, {})  # what an update in progress is heading for
    out: dict[str, Any] = {
        "VariantName": v.name,
        "DeployedImages": _deployed_images(v),
        "CurrentWeight": v.weight,
        "DesiredWeight": desired.get("DesiredWeight", v.weight),
        "RoutingConfig": v.spec.get("RoutingConfig"),
        "ManagedInstanceScaling": v.spec.get("ManagedInstanceScaling"),
    }
    if v.serverless:
        out["CurrentServerlessConfig"] = out["DesiredServerlessConfig"] = v.spec["ServerlessConfig"]
    else:
        out["CurrentInstanceCount"], out["DesiredInstanceCount"] = instance_counts(v, ep)
    if v.pools:
        out["InstancePools"] = _pool_summaries(v, ep.fleet)
    if v.name in ep.updating_variants:
        out["VariantStatus"] = [{"Status": "Updating", "StartTime": ep.modified}]
    return out


def _pending_summary(v: Variant, pending: Deployment) -> dict:
    out: dict[str, Any] = {
        "VariantName": v.name,
        "DeployedImages": _deployed_images(v),
        "DesiredWeight": v.weight,
        "InstanceType": v.spec.get("InstanceType"),
        "AcceleratorType": v.spec.get("AcceleratorType"),
        "RoutingConfig": v.spec.get("RoutingConfig"),
        "ManagedInstanceScaling": v.spec.get("ManagedInstanceScaling"),
        "VariantStatus": [{"Status": pending.phase, "StartTime": pending.phase_started or pending.started,
                           **({"StatusMessage": f"{pending.share:.0%} of the endpoint's traffic"}
                              if pending.phase != "Creating" else {})}],
        "CurrentWeight": v.weight * pending.share,
    }
    if v.serverless:
        out["DesiredServerlessConfig"] = v.spec["ServerlessConfig"]
    else:
        out["DesiredInstanceCount"] = v.instance_count
    if v.pools:
        out["InstancePools"] = _pool_summaries(v, pending.fleet)
    return out


def _pool_summaries(v: Variant, fleet: Any) -> list[dict]:
    """Each pool's type and the instances of it running now, by priority."""
    counts = fleet.pool_counts(v.name) if fleet is not None else {}
    return [{"InstanceType": p["InstanceType"], "CurrentInstanceCount": counts.get(p["InstanceType"], 0)}
            for p in v.pools]


def _extras_summary(spec: dict) -> dict:
    out = {k: v for k, v in spec.items() if k != "DataCaptureConfig"}
    capture = spec.get("DataCaptureConfig")
    if capture:
        enabled = capture.get("EnableCapture", True)
        out["DataCaptureConfig"] = {
            "EnableCapture": enabled,
            "CaptureStatus": "Started" if enabled else "Stopped",
            "CurrentSamplingPercentage": capture["InitialSamplingPercentage"],
            "DestinationS3Uri": capture["DestinationS3Uri"],
            "KmsKeyId": capture.get("KmsKeyId"),
        }
    return out


# ---------------------------------------------------------------- tags


def _tagged(backend: Backend, arn: str):
    resource = backend.resource_by_arn(arn)
    if resource is None:
        resource_type = arn.rsplit(":", 1)[-1].split("/", 1)[0]
        raise NotFound(KINDS[resource_type].noun if resource_type in KINDS else "resource", arn)
    return resource


@operation
def add_tags(backend: Backend, params: dict, call: Call) -> dict:
    resource = _tagged(backend, params["ResourceArn"])
    set_tags(backend, resource.arn, params["Tags"])
    return {"Tags": params["Tags"]}


@operation
def list_tags(backend: Backend, params: dict, call: Call) -> dict:
    resource = _tagged(backend, params["ResourceArn"])
    tags = list(backend.tags.get(resource.arn.lower(), []))
    # Tags keep the order they were added in; paging by position.
    items = [_TagItem(i, t) for i, t in enumerate(tags)]
    page = list_page(items, {**params, "SortBy": "CreationTime", "SortOrder": "Ascending"}, lambda i: i.tag,
                     "Tags", default_max=50)
    return page


@dataclass
class _TagItem:
    created: int
    tag: dict

    @property
    def name(self) -> str:
        return self.tag["Key"]


@operation
def delete_tags(backend: Backend, params: dict, call: Call) -> dict:
    resource = _tagged(backend, params["ResourceArn"])
    keys = set(params["TagKeys"])
    backend.tags[resource.arn.lower()] = [t for t in backend.tags.get(resource.arn.lower(), []) if t["Key"] not in keys]
    return {}

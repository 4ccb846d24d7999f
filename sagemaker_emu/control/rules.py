"""Rules that span several members or resources, which no JSON Schema can state.

Constraints on single members come from botocore's model and `schemas/overlays.json`;
only cross-member and cross-resource checks live here.
"""

from __future__ import annotations

from typing import Any

from sagemaker_emu.errors import InvalidInput


def check_endpoint_config(params: dict[str, Any]) -> None:
    production = params["ProductionVariants"]
    shadow = params.get("ShadowProductionVariants", [])
    seen: set[str] = set()
    for variant in production + shadow:
        name = variant["VariantName"]
        if name.lower() in seen:
            raise InvalidInput(f'The variant name "{name}" was non-unique within the request.')
        seen.add(name.lower())
    if shadow and (len(production) != 1 or len(shadow) != 1):
        raise InvalidInput(
            "An endpoint configuration with ShadowProductionVariants must have exactly one "
            "production variant and one shadow variant."
        )
    with_model = {"ModelName" in v for v in production + shadow}
    if len(with_model) > 1:
        raise InvalidInput("Either every production variant specifies ModelName, or none does (an endpoint "
                           "for inference components); an endpoint configuration cannot mix the two.")
    if with_model == {False}:
        if "ExecutionRoleArn" not in params:
            raise InvalidInput("ExecutionRoleArn must be specified in an endpoint configuration whose production "
                               "variants do not specify ModelName.")
        if any("ServerlessConfig" in v for v in production + shadow):
            raise InvalidInput("Inference components cannot be deployed to serverless production variants; "
                               "specify ModelName for a serverless variant.")
    kinds = {"ServerlessConfig" in v for v in production + shadow}
    if len(kinds) > 1:
        raise InvalidInput("Serverless and instance-based production variants cannot be mixed in one endpoint configuration.")
    if kinds == {True}:  # what Serverless Inference does not support, as AWS lists it
        if len(production) + len(shadow) > 1:
            raise InvalidInput("A serverless endpoint configuration must have exactly one production variant.")
        for member in ("DataCaptureConfig", "AsyncInferenceConfig", "CrossRegionTrafficConfig"):
            if member in params:
                raise InvalidInput(f"{member} is not supported for serverless endpoints.")
    if "CrossRegionTrafficConfig" in params and "AsyncInferenceConfig" in params:
        raise InvalidInput("CrossRegionTrafficConfig cannot be specified with AsyncInferenceConfig: the cap applies to "
                           "real-time requests from inference routers in other Regions.")
    for variant in production + shadow:
        _check_pools(variant)
        cfg = variant.get("ServerlessConfig")
        if cfg and cfg.get("ProvisionedConcurrency", 0) > cfg["MaxConcurrency"]:
            raise InvalidInput(
                f'ProvisionedConcurrency must be less than or equal to MaxConcurrency for variant "{variant["VariantName"]}".'
            )
    if sum(float(v.get("InitialVariantWeight", 1.0)) for v in production) <= 0:
        raise InvalidInput("The sum of InitialVariantWeight across production variants must be greater than 0.")


def _check_pools(variant: dict[str, Any]) -> None:
    """InstancePools: each type and each priority once (the model bounds the count and values)."""
    pools = variant.get("InstancePools", [])
    for member, what in (("InstanceType", "instance type"), ("Priority", "priority")):
        values = [p[member] for p in pools]
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise InvalidInput(f'The instance pools of production variant "{variant["VariantName"]}" must each have a '
                               f"different {what}; {', '.join(repeated)} is given more than once.")


def check_weights_and_capacities(
    desired: list[dict[str, Any]], variants: dict[str, Any], config_name: str, weights: dict[str, float],
    may_scale_to_zero: bool = False,
) -> None:
    """`variants`: the endpoint's variants by name; `weights`: their current weights;
    `may_scale_to_zero`: an asynchronous endpoint, whose requests wait for instances."""
    names = [d["VariantName"] for d in desired]
    for name in names:
        if names.count(name) > 1:
            raise InvalidInput(f'The variant name "{name}" was non-unique within the request.')
    unknown = [n for n in names if n not in variants]
    if unknown:
        quoted = ", ".join(f'"{n}"' for n in unknown)
        raise InvalidInput(f'The variant name(s) {quoted} is/are not present within endpoint configuration "{config_name}".')
    for d in desired:
        if not any(k in d for k in ("DesiredWeight", "DesiredInstanceCount", "ServerlessUpdateConfig")):
            raise InvalidInput(
                f'Specify DesiredWeight, DesiredInstanceCount or ServerlessUpdateConfig for variant "{d["VariantName"]}".'
            )
        variant = variants[d["VariantName"]]
        if "DesiredInstanceCount" in d and variant.serverless:
            raise InvalidInput(f'Variant "{d["VariantName"]}" is serverless and has no instance count.')
        if "ServerlessUpdateConfig" in d:
            if not variant.serverless:
                raise InvalidInput(f'Variant "{d["VariantName"]}" is not serverless; ServerlessUpdateConfig does not apply.')
            merged = {**variant.spec["ServerlessConfig"], **d["ServerlessUpdateConfig"]}
            if merged.get("ProvisionedConcurrency", 0) > merged["MaxConcurrency"]:
                raise InvalidInput('ProvisionedConcurrency must be less than or equal to MaxConcurrency for variant '
                                   f'"{d["VariantName"]}".')
        if d.get("DesiredInstanceCount") == 0 and not may_scale_to_zero:
            raise InvalidInput(
                f'DesiredInstanceCount for variant "{d["VariantName"]}" must be greater than 0 on an endpoint without inference components.'
            )
    new_weights = dict(weights)
    new_weights.update({d["VariantName"]: float(d["DesiredWeight"]) for d in desired if "DesiredWeight" in d})
    if sum(new_weights.values()) <= 0:
        raise InvalidInput("The sum of the variant weights must be greater than 0.")

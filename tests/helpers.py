"""Builders for the resources most tests need."""

from __future__ import annotations

IMAGE = "sagemaker-emu/echo"


def variant(name: str = "AllTraffic", model: str = "m1", **extra) -> dict:
    v = {"VariantName": name, "ModelName": model, "InstanceType": "ml.m5.large", "InitialInstanceCount": 1}
    v.update(extra)
    return v


def deploy(sm, name: str = "ep1", variants: list[dict] | None = None, wait: bool = True, environment=None) -> str:
    """Create models, a config and an endpoint named after `name`; return the config name."""
    variants = variants or [variant(model=f"{name}-model")]
    for model in {v["ModelName"] for v in variants}:
        sm.create_model(ModelName=model, PrimaryContainer={"Image": IMAGE, "Environment": environment or {}})
    config = f"{name}-config"
    sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=variants)
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    if wait:
        sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return config

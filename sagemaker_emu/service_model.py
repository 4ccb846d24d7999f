"""botocore's bundled service models: the ground truth for every shape we accept or return."""

from __future__ import annotations

import functools

import botocore.session
from botocore.model import ServiceModel

CONTROL_SERVICE = "sagemaker"
RUNTIME_SERVICE = "sagemaker-runtime"
ROUTER_SERVICE = "sagemaker-inference-router-runtime"


@functools.lru_cache(maxsize=None)
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def control_model() -> ServiceModel:
    return service_model(CONTROL_SERVICE)


@functools.lru_cache(maxsize=None)
def known_regions() -> frozenset[str]:
    """Every region of every AWS partition botocore knows, and SageMaker's own endpoints."""
    endpoints = botocore.session.get_session().get_component("data_loader").load_data("endpoints")
    regions: set[str] = set()
    for partition in endpoints["partitions"]:
        regions |= set(partition["regions"])
        regions |= set(partition["services"].get(CONTROL_SERVICE, {}).get("endpoints", {}))
    return frozenset(r for r in regions if not r.startswith("fips-") and "fips" not in r)


@functools.lru_cache(maxsize=None)
def region_description(region: str) -> str:
    """A region's name as AWS writes it in messages ("US East (N. Virginia)"), or the code."""
    endpoints = botocore.session.get_session().get_component("data_loader").load_data("endpoints")
    for partition in endpoints["partitions"]:
        if region in partition["regions"]:
            return partition["regions"][region].get("description", region)
    return region


@functools.lru_cache(maxsize=None)
def _service_names() -> frozenset[str]:
    return frozenset(botocore.session.get_session().get_available_services())


@functools.lru_cache(maxsize=1024)
def wire_protocol(signing_name: str) -> str | None:
    """The protocol botocore speaks to the service a request is signed for (`query`, `rest-xml`,
    `json`, ...), to refuse a service we do not serve in words its client reads; None if no
    service of that name is known. Only names botocore lists are loaded (never a caller's path),
    and only the protocol is kept."""
    if signing_name not in _service_names():
        return None
    loader = botocore.session.get_session().get_component("data_loader")
    metadata = loader.load_service_model(signing_name, "service-2").get("metadata", {})
    return metadata.get("protocol")

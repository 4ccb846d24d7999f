"""botocore's bundled service models: the ground truth for every shape we accept or return."""

from __future__ import annotations

import functools

import botocore.session
from botocore.model import ServiceModel

CONTROL_SERVICE = "sagemaker"
RUNTIME_SERVICE = "sagemaker-runtime"


@functools.lru_cache(maxsize=None)
def service_model(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(name)


def control_model() -> ServiceModel:
    return service_model(CONTROL_SERVICE)

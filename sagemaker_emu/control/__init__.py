"""Control plane: models, endpoint configs, endpoints, inference components and their lifecycle."""

from sagemaker_emu.control import (  # noqa: F401  (they fill registry.OPERATIONS)
    ai_benchmarks, endpoint_policies, inference_components, inference_routers, none_held, operations,
)

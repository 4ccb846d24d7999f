"""Control plane: models, endpoint configs, endpoints, inference components and their lifecycle."""

from sagemaker_emu.control import inference_components, operations  # noqa: F401  (they fill registry.OPERATIONS)

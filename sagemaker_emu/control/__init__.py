"""Control plane: models, endpoint configs, endpoints, inference components and their lifecycle."""

from sagemaker_emu.control import inference_components, none_held, operations  # noqa: F401  (they fill registry.OPERATIONS)

"""Request validation: JSON Schemas built from botocore's model, errors in SageMaker's words."""

from sagemaker_emu.schemas.validator import validate_input

__all__ = ["validate_input"]

"""sagemaker-emu: a local, boto3-compatible emulator of Amazon SageMaker real-time inference."""

__version__ = "0.1.0"

"""sagemaker-emu: a local, boto3-compatible emulator of Amazon SageMaker real-time inference."""

__version__ = "0.1.0"


def running(**settings):
    """`with sagemaker_emu.running() as emu:` serves on a free port and points boto3 at it
    for the block (see sagemaker_emu.testing)."""
    from sagemaker_emu.testing import running as _running

    return _running(**settings)

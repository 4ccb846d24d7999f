"""sagemaker-emu: a local, boto3-compatible emulator of Amazon SageMaker real-time inference."""

from sagemaker_emu._version import __version__ as __version__


def running(**settings):
    """`with sagemaker_emu.running() as emu:` serves on a free port and points boto3 at it
    for the block (see sagemaker_emu.testing)."""
    from sagemaker_emu.testing import running as _running

    return _running(**settings)

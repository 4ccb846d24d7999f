"""What can go wrong, in the emulator's own terms.

Layers below the protocol raise these; `protocol/errors.py` turns each into the AWS error
code, HTTP status and envelope of the API that was called (ValidationException on the
control plane, ValidationError on the runtime, ...).
"""

from __future__ import annotations


class EmuError(Exception):
    """Base class: `message` is the text the caller sees."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(EmuError):
    """The request breaks a constraint or a rule of the API."""


class Malformed(EmuError):
    """The request body cannot be read as the operation's input (bad JSON, wrong types)."""


class NotFound(InvalidInput):
    """A named resource does not exist (SageMaker reports this as a validation error)."""

    def __init__(self, kind: str, arn: str) -> None:
        super().__init__(f'Could not find {kind} "{arn}".')


class NotServing(InvalidInput):
    """The endpoint exists but cannot take invocations in its status."""


class AlreadyExists(InvalidInput):
    def __init__(self, kind: str, arn: str) -> None:
        super().__init__(f'Cannot create already existing {kind} "{arn}".')


class ServiceError(EmuError):
    """An error the service's model declares, named by its error shape (`InvalidParameterValueException`,
    `ObjectNotFoundException`, ...); the protocol reads the code and status from the model."""

    def __init__(self, shape: str, message: str) -> None:
        super().__init__(message)
        self.shape = shape


class LimitExceeded(EmuError):
    """A quota of the emulated account is exhausted (ResourceLimitExceeded)."""


class UnknownOperation(EmuError):
    """The request names no operation of the service."""


class NotImplementedOperation(EmuError):
    """The operation exists in SageMaker but sagemaker-emu does not emulate it."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"sagemaker-emu does not implement {operation}; "
            "see docs/compatibility.md for the operations it answers."
        )
        self.operation = operation


class PayloadTooLarge(EmuError):
    """The request body exceeds what the API accepts."""


class ModelFailure(EmuError):
    """The container answered non-2xx or not in time (SageMaker's ModelError)."""

    def __init__(self, message: str, original_status: int, original_message: str, log_stream_arn: str) -> None:
        super().__init__(message)
        self.original_status = original_status
        self.original_message = original_message
        self.log_stream_arn = log_stream_arn


class Unavailable(EmuError):
    """No instance can take the request now."""


class ModelStreamFailure(EmuError):
    """The model failed after its response had started streaming."""

    def __init__(self, message: str, error_code: str) -> None:
        super().__init__(message)
        self.error_code = error_code  # ModelInvocationTimeExceeded or StreamBroken


class ModelNotReady(EmuError):
    """The destination cannot serve the model yet: an inference component with no copies."""


class Throttled(EmuError):
    """The caller is sending too fast (ThrottlingException; injected by /_emu/faults)."""


class CallerGone(Exception):
    """The caller we are answering closed its connection: nobody is left to answer."""

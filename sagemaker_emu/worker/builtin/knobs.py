"""Read a built-in image's Environment knobs, refusing bad values with a clear message."""

from __future__ import annotations


# What the fleet tells a worker about its instance (fleet/speed.py): its type, and how fast its
# accelerator computes a prompt and steps a decode relative to the A10G llm-sim's defaults describe.
INSTANCE_TYPE = "SAGEMAKER_EMU_INSTANCE_TYPE"
PREFILL_SPEED = "SAGEMAKER_EMU_PREFILL_SPEED"
DECODE_SPEED = "SAGEMAKER_EMU_DECODE_SPEED"


class BadKnob(ValueError):
    pass


def number(env: dict[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadKnob(f"Environment {name}={raw!r} is not a number") from None
    if value < minimum:
        raise BadKnob(f"Environment {name}={raw!r} must be at least {minimum:g}")
    return value


def integer(env: dict[str, str], name: str, default: int, minimum: int = 0) -> int:
    value = number(env, name, default, minimum)
    if value != int(value):
        raise BadKnob(f"Environment {name}={env.get(name)!r} is not a whole number")
    return int(value)


def flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true"):
        return True
    if raw.lower() in ("0", "false"):
        return False
    raise BadKnob(f"Environment {name}={raw!r} must be 1, 0, true or false")

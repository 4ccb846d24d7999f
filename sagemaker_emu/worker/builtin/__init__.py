"""The built-in images, `sagemaker-emu/<name>`, configured through the container's Environment."""

from __future__ import annotations

from typing import Callable

from sagemaker_emu.worker.contract import Model

PREFIX = "sagemaker-emu/"


def _echo(env: dict[str, str], seed: int | None) -> Model:
    from sagemaker_emu.worker.builtin.echo import Echo

    return Echo.from_env(env, seed)


def _llm_sim(env: dict[str, str], seed: int | None) -> Model:
    from sagemaker_emu.worker.builtin.llm_sim import LlmSim

    return LlmSim.from_env(env, seed)


BUILTINS: dict[str, Callable[[dict[str, str], int | None], Model]] = {"echo": _echo, "llm-sim": _llm_sim}


def builtin_name(image: str) -> str | None:
    """`echo` for `sagemaker-emu/echo` (a tag such as `:latest` is allowed); None otherwise."""
    if not image.startswith(PREFIX):
        return None
    name = image[len(PREFIX):].split(":", 1)[0].split("@", 1)[0]
    return name if name in BUILTINS else None

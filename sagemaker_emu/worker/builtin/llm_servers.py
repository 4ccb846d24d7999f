"""What each LLM server that llm-sim imitates reads from its configuration, and what it refuses.

- TGI: the launcher's MAX_INPUT_TOKENS (MAX_INPUT_LENGTH before TGI 2.1), MAX_TOTAL_TOKENS and
  MAX_CONCURRENT_REQUESTS, refused with TGI's texts (422) and 429 "Model is overloaded".
- LMI: `option.*` from serving.properties or OPTION_* (lmi_options.py).
- vLLM: SM_VLLM_* variables (the image turns them into `vllm serve` arguments), its
  OpenAI-style error body, and its /invocations router's refusal of anything but OpenAI calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sagemaker_emu.kv.blocks import tokens
from sagemaker_emu.worker.builtin import lmi_options
from sagemaker_emu.worker.builtin.knobs import BadKnob, integer

APIS = ("tgi", "lmi", "vllm")  # LLM_SIM_API
VLLM_NO_HANDLER = "Cannot find suitable handler for request. Expected one of: ['ChatCompletionRequest', 'CompletionRequest']"


class BadRequest(ValueError):
    pass


@dataclass(frozen=True)
class Limits:
    """The server's length and concurrency limits; unset, no limit. `max_total_tokens` is prompt
    plus output (TGI's MAX_TOTAL_TOKENS, vLLM's SM_VLLM_MAX_MODEL_LEN)."""

    max_input_tokens: int | None = None
    max_total_tokens: int | None = None
    max_concurrent: int | None = None
    server: str = "tgi"  # whose refusal texts

    @classmethod
    def from_env(cls, env: dict[str, str], api: str) -> "Limits":
        def get(*names: str) -> int | None:
            name = next((n for n in names if env.get(n)), None)
            return integer(env, name, 0, minimum=1) if name else None

        if api == "vllm":
            return cls(max_total_tokens=get("SM_VLLM_MAX_MODEL_LEN"), server="vllm")
        if api != "tgi":
            return cls()
        limits = cls(get("MAX_INPUT_TOKENS", "MAX_INPUT_LENGTH"), get("MAX_TOTAL_TOKENS"), get("MAX_CONCURRENT_REQUESTS"))
        if limits.max_input_tokens and limits.max_total_tokens and limits.max_input_tokens >= limits.max_total_tokens:
            raise BadKnob(f"`max_input_tokens` must be < `max_total_tokens`: {limits.max_input_tokens} >= "
                          f"{limits.max_total_tokens} (Environment MAX_INPUT_TOKENS and MAX_TOTAL_TOKENS)")
        return limits

    def check(self, prompt: str, max_new: int | None) -> None:
        """The server's validation, in its order (TGI: prompt plus output, then the prompt alone).
        Without limits the prompt is not even counted: the invoke path tokenises it once, later."""
        if self.max_total_tokens is None and self.max_input_tokens is None:
            return
        input_tokens = len(tokens(prompt))
        if self.server == "vllm":
            asked = max_new or 0
            if self.max_total_tokens is not None and input_tokens + asked > self.max_total_tokens:
                raise BadRequest(f"This model's maximum context length is {self.max_total_tokens} tokens. However, "
                                 f"you requested {input_tokens + asked} tokens ({input_tokens} in the messages, "
                                 f"{asked} in the completion). Please reduce the length of the messages or completion.")
            return
        if self.max_total_tokens is not None:
            asked = max_new if max_new is not None else max(0, self.max_total_tokens - input_tokens)
            if input_tokens + asked > self.max_total_tokens:
                raise BadRequest(f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= "
                                 f"{self.max_total_tokens}. Given: {input_tokens} `inputs` tokens and {asked} "
                                 "`max_new_tokens`")
        if self.max_input_tokens is not None and input_tokens > self.max_input_tokens:
            raise BadRequest(f"Input validation error: `inputs` must have less than {self.max_input_tokens} "
                             f"tokens. Given: {input_tokens}")


def vllm_error(message: str) -> bytes:
    """vLLM's error body (its OpenAI-style ErrorResponse)."""
    return json.dumps({"error": {"message": message, "type": "BadRequestError", "param": None, "code": 400}}).encode()


@dataclass(frozen=True)
class Settings:
    api: str
    batch: int | None = None  # LMI's max_rolling_batch_size, vLLM's --max-num-seqs
    stream_all: bool = False  # LMI's option.enable_streaming
    model_name: str = ""  # vLLM's served model
    limits: Limits = field(default_factory=Limits)


def settings(env: dict[str, str]) -> Settings:
    """The server llm-sim speaks for (`LLM_SIM_API`) and what its own configuration sets."""
    api = env.get("LLM_SIM_API", "tgi")
    if api not in APIS:
        raise BadKnob(f"Environment LLM_SIM_API={api!r} is not one of {list(APIS)}")
    if api == "lmi":
        options = lmi_options.lmi_options(env)
        return Settings(api, lmi_options.batch_size(options), lmi_options.streams_everything(options))
    limits = Limits.from_env(env, api)
    if api == "vllm":
        batch = integer(env, "SM_VLLM_MAX_NUM_SEQS", 0, minimum=1) if env.get("SM_VLLM_MAX_NUM_SEQS") else None
        return Settings(api, batch, model_name=env.get("SM_VLLM_SERVED_MODEL_NAME") or env.get("SM_VLLM_MODEL") or "",
                        limits=limits)
    return Settings(api, limits=limits)

"""`sagemaker-emu/llm-sim`: a simulated generative text model that waits instead of computing.

Request and answer in the formats SageMaker's LLM containers use (`LLM_SIM_API`):
- `tgi` (default, Hugging Face TGI): `{"inputs": "...", "parameters": {"max_new_tokens": N}}`
  -> `[{"generated_text": "..."}]`; with `"stream": true`, server-sent events per token.
- `lmi` (LMI / DJL Serving, vLLM-based included): the same request -> `{"generated_text": "..."}`;
  with `"stream": true`, JSON lines per token; with LMI's `option.enable_streaming=true`, every
  answer as `{"outputs": [token]}` lines.
- `vllm` (vLLM's /invocations): OpenAI calls only, `{"prompt": "...", "max_tokens": N}` -> a
  `text_completion`, streamed as chunk events ending with `data: [DONE]`.
- All serve the Messages API: `{"messages": [{"role": ..., "content": ...}], "max_tokens": N}`
  -> an OpenAI-style `chat.completion`; with `"stream": true`, `chat.completion.chunk` events
  ending with `data: [DONE]`.
What each server reads from its own configuration and refuses is in `llm_servers.py`.

Time per request = prefill (`LLM_SIM_PREFILL_BASE_MS` + `LLM_SIM_PREFILL_MS_PER_TOKEN` per
input token) + one decode step per output token. Up to `LLM_SIM_MAX_BATCH` sequences decode
at once (continuous batching); each extra running sequence makes every step
`LLM_SIM_BATCH_SLOWDOWN` slower; further requests queue. Prefill and decode share the
accelerator, as in vLLM or TGI: computing a prompt's uncached tokens beyond what one decode
step would absorb takes the accelerator alone, and the sequences already decoding wait for it
(`LLM_SIM_PREFILL_STALLS_DECODE=0` lets them run on). Output length is `max_new_tokens` when
given, else drawn from a lognormal (`LLM_SIM_OUTPUT_TOKENS_MEDIAN`,
`LLM_SIM_OUTPUT_TOKENS_SIGMA`, capped at `LLM_SIM_MAX_OUTPUT_TOKENS`). Defaults look like a
7B model on one A10G (ml.g5); on another instance type the default times follow its
accelerator's spec sheet (fleet/speed.py tells the worker). `LLM_SIM_TIME_SCALE` multiplies
every latency.

Prefix caching: each instance keeps `LLM_SIM_KV_CACHE_BLOCKS` blocks of
`LLM_SIM_KV_BLOCK_TOKENS` prompt tokens (LRU); the cached leading blocks of a prompt are not
prefilled again. `GET /kv-events?after=N` reports what the cache stored and evicted, as
vLLM's KV-cache events do, so a KV_AWARE router can send prompts where they are cached.
"""

from __future__ import annotations

import collections
import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Generator, Iterator

import logging

from sagemaker_emu.kv import blocks as kvblocks
from sagemaker_emu.kv import events as kvevents
from sagemaker_emu.kv.blocks import prompt_text
from sagemaker_emu.kv.cache import BlockCache
from sagemaker_emu.worker.builtin import llm_servers
from sagemaker_emu.worker.builtin.knobs import DECODE_SPEED, PREFILL_SPEED, BadKnob, flag, integer, number
from sagemaker_emu.worker.builtin.llm_servers import VLLM_NO_HANDLER, BadRequest, Limits, vllm_error
from sagemaker_emu.worker.contract import Invocation, Model, Reply

log = logging.getLogger("sagemaker_emu.llm_sim")
_VOCAB = ("the model answers with tokens of simulated text that take time to decode on a busy "
          "accelerator while other sequences share each step of the batch").split()
_MIN_SLEEP_S = 0.05  # non-streaming decode sleeps in chunks at least this long


def count_tokens(text: str) -> int:
    """A tokenizer-free estimate: words and punctuation marks."""
    return len(kvblocks.tokens(text))


@dataclass
class Profile:
    prefill_base_ms: float = 20.0
    prefill_ms_per_token: float = 0.25
    decode_ms_per_token: float = 25.0
    max_batch: int = 8
    batch_slowdown: float = 0.05
    output_tokens_median: float = 120.0
    output_tokens_sigma: float = 0.8
    max_output_tokens: int = 2048
    time_scale: float = 1.0
    kv_cache_blocks: int = 2048
    kv_block_tokens: int = kvblocks.DEFAULT_BLOCK_TOKENS
    prefill_stalls_decode: bool = True

    @classmethod
    def from_env(cls, env: dict[str, str]) -> "Profile":
        d = cls(**PROFILES.get(env.get("LLM_SIM_PROFILE", "default"), {}))
        if env.get("LLM_SIM_PROFILE", "default") not in PROFILES:
            raise BadKnob(f"Environment LLM_SIM_PROFILE={env['LLM_SIM_PROFILE']!r} is not one of {sorted(PROFILES)}")
        # The instance's accelerator sets the default times (fleet/speed.py); explicit knobs win.
        prefill = number(env, PREFILL_SPEED, 1.0, minimum=1e-6)
        decode = number(env, DECODE_SPEED, 1.0, minimum=1e-6)
        return cls(
            prefill_base_ms=number(env, "LLM_SIM_PREFILL_BASE_MS", d.prefill_base_ms / prefill),
            prefill_ms_per_token=number(env, "LLM_SIM_PREFILL_MS_PER_TOKEN", d.prefill_ms_per_token / prefill),
            decode_ms_per_token=number(env, "LLM_SIM_DECODE_MS_PER_TOKEN", d.decode_ms_per_token / decode),
            max_batch=integer(env, "LLM_SIM_MAX_BATCH", d.max_batch, minimum=1),
            batch_slowdown=number(env, "LLM_SIM_BATCH_SLOWDOWN", d.batch_slowdown),
            output_tokens_median=number(env, "LLM_SIM_OUTPUT_TOKENS_MEDIAN", d.output_tokens_median, minimum=1),
            output_tokens_sigma=number(env, "LLM_SIM_OUTPUT_TOKENS_SIGMA", d.output_tokens_sigma),
            max_output_tokens=integer(env, "LLM_SIM_MAX_OUTPUT_TOKENS", d.max_output_tokens, minimum=1),
            time_scale=number(env, "LLM_SIM_TIME_SCALE", d.time_scale),
            kv_cache_blocks=integer(env, "LLM_SIM_KV_CACHE_BLOCKS", d.kv_cache_blocks),
            kv_block_tokens=integer(env, "LLM_SIM_KV_BLOCK_TOKENS", d.kv_block_tokens, minimum=1),
            prefill_stalls_decode=flag(env, "LLM_SIM_PREFILL_STALLS_DECODE", d.prefill_stalls_decode),
        )

    def prefill_s(self, uncached_tokens: int) -> float:
        """Seconds to prefill a prompt of which `uncached_tokens` are not in the cache."""
        return (self.prefill_base_ms + self.prefill_ms_per_token * uncached_tokens) / 1000 * self.time_scale

    def step_s(self, running: int = 1) -> float:
        """Seconds of one decode step with `running` sequences in the batch."""
        return self.decode_ms_per_token / 1000 * (1 + self.batch_slowdown * (running - 1)) * self.time_scale


# How an instance serves concurrent requests; explicit LLM_SIM_* knobs override these.
PROFILES: dict[str, dict] = {
    "default": {},  # continuous batching of 8, 5% slower per extra sequence
    "serial": {"max_batch": 1, "batch_slowdown": 0.0},  # one at a time, the rest queue in order
    "batch16": {"max_batch": 16, "batch_slowdown": 0.10},  # 16 at once, 10% slower per extra one
}


class Batch:
    """Continuous batching: at most `size` sequences decode at once, the rest wait in order.

    A prompt whose computing takes longer than a decode step takes the accelerator alone, one
    at a time, and the running sequences wait out the excess; shorter ones ride along in a
    step, as a memory-bound step computes a few more tokens at no extra cost. `stalled` adds
    up those waits, so a decoding sequence can wait out the ones since it last looked
    (`catch_up`). That is how one uncached long prompt slows every running sequence, the
    cost cache-aware routing avoids."""

    def __init__(self, size: int, prefill_stalls_decode: bool = True) -> None:
        self.size = size
        self.running = 0
        self.stalled = 0.0
        self.prefill_stalls_decode = prefill_stalls_decode
        self._waiting: collections.deque[object] = collections.deque()
        self._cond = threading.Condition()
        self._accelerator = threading.Lock()

    def prefill(self, seconds: float, step: float, sleep: Callable[[float], None] = time.sleep) -> float:
        """Compute a prompt for `seconds` beside decode steps of `step` seconds; returns the mark
        from which this sequence's decoding counts stalls."""
        if not self.prefill_stalls_decode or seconds <= step:
            sleep(seconds)
            return self.stalled
        with self._accelerator:
            self.stalled += seconds - step  # written only here, under the accelerator's lock
            mark = self.stalled
            sleep(seconds)
            return mark

    def catch_up(self, mark: float, sleep: Callable[[float], None] = time.sleep) -> float:
        """Wait out the prefills that ran since `mark`; returns the new mark."""
        while self.stalled > mark:
            behind, mark = self.stalled - mark, self.stalled
            sleep(behind)
        return mark

    def enter(self) -> None:
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
            self._cond.wait_for(lambda: self._waiting[0] is ticket and self.running < self.size)
            self._waiting.popleft()
            self.running += 1
            self._cond.notify_all()

    def leave(self) -> None:
        with self._cond:
            self.running -= 1
            self._cond.notify_all()

    def load(self) -> int:
        """Sequences decoding or waiting for a slot."""
        with self._cond:
            return self.running + len(self._waiting)


OBJECTS = {"chat": ("chat.completion", "chat.completion.chunk"), "text": ("text_completion", "text_completion")}


def _choice(kind: str, text: str, finish: str | None, chunk: bool) -> dict:
    if kind == "text":
        return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": None}
    return {"index": 0, ("delta" if chunk else "message"): {"role": "assistant", "content": text},
            "logprobs": None, "finish_reason": finish}


@dataclass
class LlmSim(Model):
    profile: Profile = field(default_factory=Profile)
    rng: random.Random = field(default_factory=random.Random)
    concurrency: int | None = None  # the batch does its own queueing
    api: str = "tgi"  # the serving container whose request and answer formats are spoken
    stream_all: bool = False  # LMI's option.enable_streaming
    model_name: str = ""  # what OpenAI-style answers name when the call does not (vLLM's served model)
    limits: Limits = field(default_factory=Limits)  # the server's length and concurrency limits

    def __post_init__(self) -> None:
        self.batch = Batch(self.profile.max_batch, self.profile.prefill_stalls_decode)
        self.cache = BlockCache(self.profile.kv_cache_blocks, self.profile.kv_block_tokens)
        self._rng_lock = threading.Lock()

    @classmethod
    def from_env(cls, env: dict[str, str], seed: int | None) -> "LlmSim":
        server = llm_servers.settings(env)
        if server.batch is not None and not env.get("LLM_SIM_MAX_BATCH"):  # an explicit knob still wins
            env = {**env, "LLM_SIM_MAX_BATCH": str(server.batch)}
        return cls(profile=Profile.from_env(env), rng=random.Random(seed), api=server.api,
                   stream_all=server.stream_all, limits=server.limits, model_name=server.model_name)

    def healthy(self) -> bool:
        return True

    def get(self, path: str, query: dict[str, str]) -> Reply | None:
        """`GET /kv-events?after=N`: the cache's events after sequence number N."""
        if path != kvevents.PATH:
            return None
        try:
            after = int(query.get("after", "0"))
        except ValueError:
            return Reply(status=400, body=b'{"error": "after must be an integer"}')
        return Reply(body=json.dumps(self.cache.events_after(after)).encode())

    def chat(self, invocation: Invocation) -> Reply | None:
        """`POST /v1/chat/completions`: every server llm-sim imitates has it (TGI's Messages API,
        LMI's OpenAI-compatible schema, vLLM's), for chat requests only."""
        try:
            if "messages" not in self._request(invocation.body):
                raise BadRequest("Input validation error: `messages` is required")
        except BadRequest as exc:
            return Reply(status=400, body=vllm_error(str(exc)), content_type="application/json")
        return self.invoke(invocation)

    def invoke(self, invocation: Invocation) -> Reply:
        try:
            request = self._request(invocation.body)
            # OpenAI-style calls: chat (the Messages API) everywhere, text completions on vLLM,
            # whose /invocations takes nothing else
            kind = "chat" if "messages" in request else "text" if self.api == "vllm" and "prompt" in request else None
            if self.api == "vllm" and kind is None:
                raise BadRequest(VLLM_NO_HANDLER)
            prompt, max_new, details = (self._parse_chat(request) if kind == "chat" else
                                        self._parse_completion(request) if kind == "text" else self._parse(request))
            streaming = request.get("stream") is True
            self.limits.check(prompt, max_new)
        except BadRequest as exc:
            if self.api == "vllm":
                return Reply(status=400, body=vllm_error(str(exc)), content_type="application/json")
            return Reply(status=422, body=json.dumps({"error": str(exc), "error_type": "validation"}).encode())
        if self.limits.max_concurrent is not None and self.batch.load() >= self.limits.max_concurrent:
            return Reply(status=429, body=b'{"error": "Model is overloaded", "error_type": "overloaded"}')
        if kind is not None:
            usage = isinstance(request.get("stream_options"), dict) and request["stream_options"].get("include_usage") is True
            return self._openai(kind, prompt, max_new, streaming, self._head(kind, request), invocation.connected, usage)
        if streaming:
            accept = (invocation.accept or "").split(";")[0].strip().lower()
            if accept == "text/plain":  # plain mode: each chunk is a token's text
                tokens = self.generate(prompt, max_new, invocation.connected, stream=True)
                return Reply(body=(t.encode() for t in tokens), content_type="text/plain")
            if self.api == "lmi":
                return Reply(body=self._json_lines(prompt, max_new, invocation.connected),
                             content_type="application/jsonlines")
            return Reply(body=self._sse(prompt, max_new, invocation.connected), content_type="text/event-stream")
        if self.stream_all:
            return Reply(body=self._outputs_lines(prompt, max_new, invocation.connected),
                         content_type="application/jsonlines")
        stats: dict = {}
        text = "".join(self.generate(prompt, max_new, invocation.connected, stream=False, stats=stats))
        answer: dict = {"generated_text": text}
        adapter = invocation.headers.get("x-amzn-sagemaker-adapter-identifier")
        if adapter:  # an adapter inference component's call, on its base's copy
            answer["adapter"] = adapter
        if details:  # as TGI's `details` parameter, with the prompt's cached tokens too
            answer["details"] = {"finish_reason": "length", **stats}
        return Reply(body=json.dumps([answer] if self.api == "tgi" else answer).encode())

    def _head(self, kind: str, request: dict) -> dict:
        """The fields every OpenAI-style answer and chunk opens with."""
        model = str(request.get("model") or self.model_name or self.api)
        if self.api == "vllm":
            with self._rng_lock:
                suffix = f"{self.rng.getrandbits(128):032x}"
            return {"id": f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{suffix}", "created": int(time.time()), "model": model}
        return {"id": "", "created": int(time.time()), "model": model, "system_fingerprint": f"llm-sim-{self.api}"}

    def _openai(self, kind: str, prompt: str, max_new: int | None, streaming: bool, head: dict, connected,
                usage: bool = False) -> Reply:
        """An OpenAI-style answer: `chat` completions (the Messages API, as TGI, LMI and vLLM serve
        it on /invocations) or `text` completions (vLLM's), whole or as server-sent chunks (with
        `usage`, OpenAI's `stream_options.include_usage`, a last chunk carrying the counts)."""
        n_out = self.output_length(max_new)
        finish = "length" if max_new is not None else "stop"
        if streaming:
            return Reply(body=self._openai_chunks(kind, prompt, n_out, finish, head, connected, usage),
                         content_type="text/event-stream")
        stats: dict = {}
        text = "".join(self.generate(prompt, n_out, connected, stream=False, stats=stats))
        answer = {**head, "object": OBJECTS[kind][0], "choices": [_choice(kind, text, finish, chunk=False)],
                  "usage": {"prompt_tokens": stats.get("prompt_tokens", 0), "completion_tokens": n_out,
                            "total_tokens": stats.get("prompt_tokens", 0) + n_out}}
        return Reply(body=json.dumps(answer).encode(), content_type="application/json")

    def _tokens(self, prompt: str, n_out: int, connected, frame: Callable[[int, str, str | None], bytes],
                end: bytes = b"") -> Iterator[bytes]:
        """Each token as it is decoded, framed by `frame(index, token, the whole text on the last
        token else None)`, then `end`."""
        text = []
        tokens = self.generate(prompt, n_out, connected, stream=True)
        try:
            for index, token in enumerate(tokens, start=1):
                text.append(token)
                yield frame(index, token, "".join(text) if index == n_out else None)
            if end:
                yield end
        finally:
            tokens.close()

    def _openai_chunks(self, kind: str, prompt: str, n_out: int, finish: str, head: dict, connected,
                       usage: bool = False) -> Iterator[bytes]:
        """One chunk event per token, then (with `usage`) the counts, then `data: [DONE]`."""
        def frame(index: int, token: str, whole: str | None) -> bytes:
            chunk = {**head, "object": OBJECTS[kind][1],
                     "choices": [_choice(kind, token, finish if whole is not None else None, chunk=True)]}
            return b"data: " + json.dumps(chunk).encode() + b"\n\n"

        end = b"data: [DONE]\n\n"
        if usage:
            prompt_tokens = count_tokens(prompt)
            counts = {**head, "object": OBJECTS[kind][1], "choices": [], "usage": {
                "prompt_tokens": prompt_tokens, "completion_tokens": n_out, "total_tokens": prompt_tokens + n_out}}
            end = b"data: " + json.dumps(counts).encode() + b"\n\n" + end
        return self._tokens(prompt, n_out, connected, frame, end=end)

    def _json_lines(self, prompt: str, max_new: int | None, connected) -> Iterator[bytes]:
        """LMI's streaming format: one JSON object per line and token, the whole text on the last."""
        def frame(index: int, token: str, whole: str | None) -> bytes:
            line = {"token": {"id": index, "text": token, "log_prob": -0.5}, "generated_text": whole, "details": None}
            return json.dumps(line).encode() + b"\n"

        return self._tokens(prompt, self.output_length(max_new), connected, frame)

    def _outputs_lines(self, prompt: str, max_new: int | None, connected) -> Iterator[bytes]:
        """What LMI sends with option.enable_streaming for a call that does not ask to stream:
        `{"outputs": [token]}` per line (the format the SageMaker SDK's LineIterator documents)."""
        def frame(index: int, token: str, whole: str | None) -> bytes:
            return json.dumps({"outputs": [token]}).encode() + b"\n"

        return self._tokens(prompt, self.output_length(max_new), connected, frame)

    def _sse(self, prompt: str, max_new: int | None, connected) -> Iterator[bytes]:
        """TGI's server-sent events: one `data:` line per token, the whole text on the last."""
        def frame(index: int, token: str, whole: str | None) -> bytes:
            event = {"index": index, "token": {"id": index, "text": token, "logprob": -0.5, "special": False},
                     "generated_text": whole, "details": None}
            return b"data:" + json.dumps(event).encode() + b"\n\n"

        return self._tokens(prompt, self.output_length(max_new), connected, frame)

    @staticmethod
    def _request(body: bytes) -> dict:
        try:
            request = json.loads(body or b"null")
        except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
            raise BadRequest("Failed to deserialize the JSON body into the target type") from None
        if not isinstance(request, dict):
            raise BadRequest("Failed to deserialize the JSON body into the target type: expected an object")
        return request

    @staticmethod
    def _parse_chat(request: dict) -> tuple[str, int | None, bool]:
        prompt = prompt_text({"messages": request["messages"]})
        if not prompt:
            raise BadRequest("Input validation error: `messages` must be a non-empty list of "
                             "{\"role\": ..., \"content\": ...} objects")
        max_new = request.get("max_tokens", request.get("max_completion_tokens"))
        if max_new is not None and (not isinstance(max_new, int) or isinstance(max_new, bool) or max_new < 1):
            raise BadRequest("Input validation error: `max_tokens` must be strictly positive")
        return prompt, max_new, False

    @staticmethod
    def _parse_completion(request: dict) -> tuple[str, int | None, bool]:
        """vLLM's text completions: one `prompt`, `max_tokens` 16 unless given (null: no limit)."""
        prompt = request["prompt"]
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str) or not prompt:
            raise BadRequest("`prompt` must be a non-empty string (llm-sim takes one prompt per call)")
        max_new = request.get("max_tokens", 16)
        if max_new is not None and (not isinstance(max_new, int) or isinstance(max_new, bool) or max_new < 1):
            raise BadRequest("max_tokens must be at least 1, got {}.".format(max_new))
        return prompt, max_new, False

    @staticmethod
    def _parse(request: dict) -> tuple[str, int | None, bool]:
        if not isinstance(request.get("inputs"), str):
            raise BadRequest('Input validation error: `inputs` must be a string')
        params = request.get("parameters") or {}
        max_new = params.get("max_new_tokens") if isinstance(params, dict) else None
        details = isinstance(params, dict) and params.get("details") is True
        if max_new is not None and (not isinstance(max_new, int) or isinstance(max_new, bool) or max_new < 1):
            raise BadRequest("Input validation error: `max_new_tokens` must be strictly positive")
        return request["inputs"], max_new, details

    def output_length(self, max_new: int | None) -> int:
        if max_new is not None:
            return min(max_new, self.profile.max_output_tokens)
        p = self.profile
        with self._rng_lock:
            drawn = p.output_tokens_median * math.exp(self.rng.gauss(0.0, p.output_tokens_sigma))
        return max(1, min(p.max_output_tokens, round(drawn)))

    def _words(self, n: int) -> list[str]:
        with self._rng_lock:
            return [self.rng.choice(_VOCAB) for _ in range(n)]

    def prefill_seconds(self, n_tokens: int, hashes: list[str], count: bool = False) -> float:
        """Prefill time for a prompt: the leading blocks already cached are not computed again.
        `count`: the prompt is being prefilled, so the lookup counts in the cache's hit rate."""
        p = self.profile
        cached = (self.cache.lookup(hashes, n_tokens) if count else self.cache.hit_blocks(hashes)) * p.kv_block_tokens
        return p.prefill_s(n_tokens - cached)

    def generate(self, prompt: str, max_new: int | None, connected, stream: bool,
                 stats: dict | None = None) -> Generator[str, None, None]:
        """Yield the output token by token (stream) or in chunks, taking simulated time.

        `stats` receives prompt_tokens, cached_tokens and generated_tokens."""
        p = self.profile
        n_out = self.output_length(max_new)
        words = self._words(n_out)
        toks = kvblocks.tokens(prompt)
        hashes = kvblocks.block_hashes(toks, p.kv_block_tokens) if p.kv_cache_blocks else []
        done = 0
        self.batch.enter()
        try:
            if stats is not None:
                stats.update(prompt_tokens=len(toks), generated_tokens=n_out,
                             cached_tokens=self.cache.hit_blocks(hashes) * p.kv_block_tokens)
            # The fixed part overlaps with other requests (prefills are batched into steps);
            # computing the uncached tokens is what may take the accelerator.
            base = p.prefill_s(0)
            time.sleep(base)
            mark = self.batch.prefill(self.prefill_seconds(len(toks), hashes, count=True) - base,
                                      step=p.step_s())
            self.cache.store(hashes)
            while done < n_out:
                if not connected():
                    return  # the caller went away: free the batch slot now
                step = p.step_s(self.batch.running)
                chunk = 1 if stream or step <= 0 else max(1, min(n_out - done, math.ceil(_MIN_SLEEP_S / step)))
                time.sleep(step * chunk)
                mark = self.batch.catch_up(mark)
                yield "".join(f" {w}" if done + i else w for i, w in enumerate(words[done : done + chunk]))
                done += chunk
        finally:
            self.batch.leave()
            if done < n_out:
                log.info("the caller went away after %d of %d tokens; generation stopped", done, n_out)

import json
import random
import statistics
import threading

import pytest

from sagemaker_emu.worker.builtin.knobs import BadKnob
from sagemaker_emu.worker.builtin.llm_sim import Batch, LlmSim, Profile, count_tokens
from sagemaker_emu.worker.contract import Invocation

FAST = Profile(prefill_base_ms=0, prefill_ms_per_token=0, decode_ms_per_token=0)


def test_token_count_counts_words_and_punctuation():
    assert count_tokens("Hello, world!") == 4
    assert count_tokens("") == 0


def test_answers_in_tgi_format_with_requested_length():
    sim = LlmSim(profile=FAST)
    reply = sim.invoke(Invocation(body=json.dumps({"inputs": "hi", "parameters": {"max_new_tokens": 9}}).encode()))
    assert reply.status == 200
    out = json.loads(reply.body)
    assert len(out) == 1 and len(out[0]["generated_text"].split()) == 9


@pytest.mark.parametrize("body", [b"not json", b'{"inputs": 5}', b'{"inputs": "x", "parameters": {"max_new_tokens": 0}}',
                                  b"[" * 5000 + b"]" * 5000,  # deeper than the JSON decoder recurses
                                  b'{"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}'])
def test_bad_requests_are_422(body):
    reply = LlmSim(profile=FAST).invoke(Invocation(body=body))
    assert reply.status == 422
    assert json.loads(reply.body)["error_type"] == "validation"


def test_output_length_distribution_follows_the_profile():
    import random

    sim = LlmSim(profile=Profile(output_tokens_median=120, output_tokens_sigma=0.8, max_output_tokens=2048),
                 rng=random.Random(1))
    draws = [sim.output_length(None) for _ in range(4000)]
    assert 105 <= statistics.median(draws) <= 135
    assert max(draws) <= 2048 and min(draws) >= 1
    assert sim.output_length(50) == 50


def test_same_seed_same_text():
    import random

    def text(seed):
        sim = LlmSim(profile=FAST, rng=random.Random(seed))
        return sim.invoke(Invocation(body=b'{"inputs": "x", "parameters": {"max_new_tokens": 12}}')).body

    assert text(3) == text(3)
    assert text(3) != text(4)


def test_generation_stops_when_the_caller_is_gone():
    sim = LlmSim(profile=FAST)
    connected = iter([True, True, False])
    chunks = list(sim.generate("x", 100, lambda: next(connected), stream=True))
    assert len(chunks) == 2
    assert sim.batch.running == 0


def test_a_long_prefill_pauses_the_sequences_already_decoding():
    batch = Batch(16)
    slept: list[float] = []
    mine = batch.prefill(0.4, step=0.025, sleep=slept.append)  # its own prefill: not a stall for it
    assert slept == [0.4] and batch.catch_up(mine, sleep=slept.append) == mine and slept == [0.4]
    batch.prefill(0.325, step=0.025, sleep=lambda s: None)  # two others arrive while it decodes
    batch.prefill(0.225, step=0.025, sleep=lambda s: None)
    mine = batch.catch_up(mine, sleep=slept.append)
    assert slept == [0.4, pytest.approx(0.5)]  # what each computed beyond one decode step
    assert batch.catch_up(mine, sleep=slept.append) == mine and len(slept) == 2  # each waited out once


def test_a_prompt_that_fits_in_a_decode_step_pauses_nobody():
    batch = Batch(16)
    mark = batch.stalled
    batch.prefill(0.02, step=0.025, sleep=lambda s: None)
    slept: list[float] = []
    batch.catch_up(mark, sleep=slept.append)
    assert slept == []


def test_prefill_stalls_can_be_turned_off():
    batch = Batch(16, prefill_stalls_decode=False)
    mark = batch.prefill(0.1, step=0.025, sleep=lambda s: None)
    batch.prefill(0.3, step=0.025, sleep=lambda s: None)
    slept: list[float] = []
    batch.catch_up(mark, sleep=slept.append)
    assert slept == []
    assert Profile.from_env({"LLM_SIM_PREFILL_STALLS_DECODE": "0"}).prefill_stalls_decode is False
    with pytest.raises(BadKnob):
        Profile.from_env({"LLM_SIM_PREFILL_STALLS_DECODE": "maybe"})


def test_batch_admits_at_most_its_size_in_order():
    batch = Batch(2)
    batch.enter()
    batch.enter()
    entered = []
    waiters = [threading.Thread(target=lambda n=n: (batch.enter(), entered.append(n))) for n in range(2)]
    for t in waiters:
        t.start()
    assert entered == [] and batch.running == 2
    batch.leave()
    waiters[0].join(5)
    assert entered == [0]
    batch.leave()
    waiters[1].join(5)
    assert entered == [0, 1] and batch.running == 2


def test_knobs_are_checked():
    with pytest.raises(BadKnob, match="LLM_SIM_MAX_BATCH"):
        Profile.from_env({"LLM_SIM_MAX_BATCH": "0"})
    with pytest.raises(BadKnob, match="is not a number"):
        Profile.from_env({"LLM_SIM_DECODE_MS_PER_TOKEN": "fast"})
    assert Profile.from_env({"LLM_SIM_TIME_SCALE": "0.1"}).time_scale == 0.1


from sagemaker_emu.kv import blocks as kvblocks  # noqa: E402
from sagemaker_emu.kv.cache import BlockCache  # noqa: E402
from sagemaker_emu.kv.index import KvIndex  # noqa: E402


def test_block_hashes_chain_whole_blocks_only():
    toks = kvblocks.tokens("a b c d e f g h i j")
    assert len(kvblocks.block_hashes(toks, 4)) == 2  # 10 tokens: two full blocks of 4
    other = kvblocks.tokens("a b c d X f g h i j")
    assert kvblocks.block_hashes(toks, 4)[0] == kvblocks.block_hashes(other, 4)[0]
    assert kvblocks.block_hashes(toks, 4)[1] != kvblocks.block_hashes(other, 4)[1]  # the chain differs after X


def test_block_cache_lru_and_events():
    cache = BlockCache(capacity=3)
    cache.store(["a", "b"])
    cache.store(["a", "c"])  # refreshes a, stores c
    cache.store(["d"])  # evicts the least recently used: b
    assert cache.hit_blocks(["a", "c", "d"]) == 3 and cache.hit_blocks(["b"]) == 0
    out = cache.events_after(0)
    assert [(e["type"], e["block_hashes"]) for e in out["events"]] == [
        ("BlockStored", ["a", "b"]), ("BlockStored", ["c"]), ("BlockStored", ["d"]), ("BlockRemoved", ["b"])]
    assert (out["last"], out["occupancy"], out["capacity"]) == (4, 3, 3)
    assert cache.events_after(4)["events"] == []


def test_a_consumer_behind_the_event_log_gets_a_snapshot():
    cache = BlockCache(capacity=10, max_events=2)
    for h in "abcd":
        cache.store([h])
    out = cache.events_after(0)
    assert out["snapshot"] == ["a", "b", "c", "d"] and out["events"] == []


def test_cached_prompt_prefills_faster():
    profile = Profile(prefill_base_ms=5, prefill_ms_per_token=2, decode_ms_per_token=0, kv_block_tokens=16)
    sim = LlmSim(profile=profile)
    prompt = " ".join(f"w{n}" for n in range(170))  # 10 full blocks and 10 tokens more
    hashes = kvblocks.block_hashes(kvblocks.tokens(prompt), 16)
    assert sim.prefill_seconds(170, hashes) == pytest.approx(0.345)
    list(sim.generate(prompt, 1, lambda: True, stream=False))
    assert sim.prefill_seconds(170, hashes) == pytest.approx(0.025)  # only the 10-token tail
    longer = kvblocks.block_hashes(kvblocks.tokens(prompt + " more" * 40), 16)
    assert sim.cache.hit_blocks(longer) == 10
    # the generate call's lookup counted, found nothing; the others only asked
    assert (sim.cache.queried_tokens, sim.cache.hit_tokens) == (170, 0)
    list(sim.generate(prompt, 1, lambda: True, stream=False))
    report = sim.cache.events_after(0)  # the hit rate the live view shows: 160 of 340 prompt tokens
    assert (report["queried_tokens"], report["hit_tokens"]) == (340, 160)
    index = KvIndex()
    index.apply(report)
    assert (index.queried_tokens, index.hit_tokens) == (340, 160)


def test_instance_profiles():
    serial = Profile.from_env({"LLM_SIM_PROFILE": "serial"})
    assert (serial.max_batch, serial.batch_slowdown) == (1, 0.0)
    batch = Profile.from_env({"LLM_SIM_PROFILE": "batch16", "LLM_SIM_DECODE_MS_PER_TOKEN": "5"})
    assert (batch.max_batch, batch.batch_slowdown, batch.decode_ms_per_token) == (16, 0.10, 5.0)
    assert Profile.from_env({"LLM_SIM_PROFILE": "batch16", "LLM_SIM_MAX_BATCH": "4"}).max_batch == 4
    with pytest.raises(BadKnob, match="LLM_SIM_PROFILE"):
        Profile.from_env({"LLM_SIM_PROFILE": "turbo"})


def test_tokens_are_exactly_the_pattern_s():
    import re

    pattern = re.compile(r"\w+|[^\w\s]")
    samples = ["Hello, world! It's 3.14 - déjà vu; naïve café.", "snake_case and __dunder__ x_1",
               "tabs\tand\nnewlines  and   spaces", "日本語のテキスト、句読点。", "", "...!!!", "a.b.c 1,2,3"]
    rng = random.Random(7)  # and random texts over a mix of the characters that decide the path
    alphabet = "ab9Z_ \t\n\xa0\x1c.,'-é日"
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(500)]
    samples += ["".join(rng.choice("ab9Z \n\xa0") for _ in range(40)) for _ in range(100)]  # plain ASCII words
    for text in samples:
        assert kvblocks.tokens(text) == pattern.findall(text), text


def _lmi(model_dir, properties: str | None = None, **env: str) -> LlmSim:
    if properties is not None:  # in a model folder beneath the model directory, as DJL's model store
        (model_dir / "mymodel").mkdir(parents=True)
        (model_dir / "mymodel" / "serving.properties").write_text(properties)
    model_dir.mkdir(exist_ok=True)
    return LlmSim.from_env({"LLM_SIM_API": "lmi", "SM_MODEL_DIR": str(model_dir), "LLM_SIM_TIME_SCALE": "0", **env}, 1)


def test_lmi_reads_serving_properties_and_option_variables(tmp_path):
    sim = _lmi(tmp_path, "engine=MPI\n# option.max_rolling_batch_size=99\noption.max_rolling_batch_size = 3\n"
                         "option.enable_streaming=TRUE\n", OPTION_MAX_ROLLING_BATCH_SIZE="5")
    assert sim.batch.size == 3 and sim.stream_all  # the file's value wins over the variable's
    assert _lmi(tmp_path / "none", OPTION_MAX_ROLLING_BATCH_SIZE="5").batch.size == 5
    assert LlmSim.from_env({"LLM_SIM_API": "tgi", "OPTION_MAX_ROLLING_BATCH_SIZE": "5"}, 1).batch.size == 8  # LMI's only
    assert _lmi(tmp_path, LLM_SIM_MAX_BATCH="2").batch.size == 2  # an explicit knob still wins


@pytest.mark.parametrize("option", ["max_rolling_batch_size=0", "max_rolling_batch_size=lots", "enable_streaming=yes"])
def test_lmi_refuses_bad_options(tmp_path, option):
    with pytest.raises(BadKnob, match=f"LMI option {option.split('=')[0]}="):
        _lmi(tmp_path, f"option.{option}\n")


def test_lmi_enable_streaming_streams_outputs_lines_without_being_asked(tmp_path):
    sim = _lmi(tmp_path, "option.enable_streaming=true\n")
    reply = sim.invoke(Invocation(body=json.dumps({"inputs": "hi", "parameters": {"max_new_tokens": 3}}).encode()))
    lines = [json.loads(line) for line in b"".join(reply.body).splitlines()]
    assert reply.content_type == "application/jsonlines" and len(lines) == 3
    assert all(list(line) == ["outputs"] and len(line["outputs"]) == 1 for line in lines)
    asked = sim.invoke(Invocation(body=json.dumps({"inputs": "hi", "stream": True, "parameters": {"max_new_tokens": 2}}).encode()))
    assert [json.loads(line)["token"]["id"] for line in b"".join(asked.body).splitlines()] == [1, 2]
    plain = _lmi(tmp_path / "plain")
    assert "generated_text" in json.loads(plain.invoke(Invocation(body=b'{"inputs": "hi"}')).body)


def _tgi(**env: str) -> LlmSim:
    return LlmSim.from_env({"LLM_SIM_TIME_SCALE": "0", **env}, 1)


def _ask(sim: LlmSim, prompt: str, max_new: int | None = None, chat: bool = False):
    if chat:
        body = {"messages": [{"role": "user", "content": prompt}], **({"max_tokens": max_new} if max_new else {})}
    else:
        body = {"inputs": prompt, "parameters": {"max_new_tokens": max_new} if max_new else {}}
    reply = sim.invoke(Invocation(body=json.dumps(body).encode()))
    return reply.status, json.loads(reply.body)


def test_tgi_validates_lengths_against_its_launcher_limits():
    sim = _tgi(MAX_INPUT_TOKENS="4", MAX_TOTAL_TOKENS="10")
    assert _ask(sim, "one two three four five six", 1) == (422, {
        "error": "Input validation error: `inputs` must have less than 4 tokens. Given: 6", "error_type": "validation"})
    assert _ask(sim, "one two three", 8)[1]["error"] == ("Input validation error: `inputs` tokens + `max_new_tokens` "
                                                         "must be <= 10. Given: 3 `inputs` tokens and 8 `max_new_tokens`")
    assert _ask(sim, "one two three", 7)[0] == 200  # 3 + 7 = 10 is allowed
    assert _ask(sim, "one two three", 7, chat=True)[0] == 422  # the Messages API's prompt adds `user:`
    legacy = _tgi(MAX_INPUT_LENGTH="2")  # the variable's name before TGI 2.1
    assert "less than 2 tokens. Given: 3" in _ask(legacy, "one two three", 1)[1]["error"]
    whole = _tgi(MAX_TOTAL_TOKENS="10")  # no max_new_tokens: TGI asks for what is left of the total
    assert "Given: 12 `inputs` tokens and 0 `max_new_tokens`" in _ask(whole, " ".join(["w"] * 12))[1]["error"]
    assert _tgi(MAX_TOTAL_TOKENS="10", LLM_SIM_API="lmi").limits == _tgi().limits  # TGI's variables only
    with pytest.raises(BadKnob, match="`max_input_tokens` must be < `max_total_tokens`: 10 >= 10"):
        _tgi(MAX_INPUT_TOKENS="10", MAX_TOTAL_TOKENS="10")


def test_tgi_answers_429_beyond_max_concurrent_requests():
    sim = _tgi(MAX_CONCURRENT_REQUESTS="1")
    sim.batch.enter()  # one sequence decoding
    assert _ask(sim, "hi", 1) == (429, {"error": "Model is overloaded", "error_type": "overloaded"})
    sim.batch.leave()
    assert _ask(sim, "hi", 1)[0] == 200


def _vllm(**env: str) -> LlmSim:
    return LlmSim.from_env({"LLM_SIM_API": "vllm", "LLM_SIM_TIME_SCALE": "0", **env}, 1)


def _call(sim: LlmSim, body: dict):
    reply = sim.invoke(Invocation(body=json.dumps(body).encode()))
    data = reply.body if isinstance(reply.body, bytes) else b"".join(reply.body)
    return reply.status, reply.content_type, data


def test_vllm_answers_text_completions_as_its_invocations_route_does():
    sim = _vllm(SM_VLLM_MODEL="meta-llama/Llama-3.1-8B-Instruct")
    status, content_type, data = _call(sim, {"prompt": "Once upon a time", "max_tokens": 5})
    answer = json.loads(data)
    assert (status, content_type, answer["object"]) == (200, "application/json", "text_completion")
    assert answer["id"].startswith("cmpl-") and answer["model"] == "meta-llama/Llama-3.1-8B-Instruct"
    assert len(answer["choices"][0]["text"].split()) == 5 and answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}
    assert len(json.loads(_call(sim, {"prompt": ["hi"]})[2])["choices"][0]["text"].split()) == 16  # vLLM's default
    chat = json.loads(_call(sim, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})[2])
    assert chat["object"] == "chat.completion" and chat["id"].startswith("chatcmpl-")


def test_vllm_streams_completion_chunks_then_done():
    status, content_type, data = _call(_vllm(), {"prompt": "hi", "max_tokens": 3, "stream": True})
    events = [line[len(b"data: "):] for line in data.split(b"\n\n") if line]
    assert content_type == "text/event-stream" and events[-1] == b"[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert [c["object"] for c in chunks] == ["text_completion"] * 3
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, "length"]


def test_vllm_refuses_what_it_has_no_handler_for_and_what_is_too_long():
    status, _, data = _call(_vllm(), {"inputs": "TGI's format"})
    assert status == 400 and json.loads(data) == {"error": {
        "message": "Cannot find suitable handler for request. Expected one of: ['ChatCompletionRequest', "
                   "'CompletionRequest']", "type": "BadRequestError", "param": None, "code": 400}}
    sim = _vllm(SM_VLLM_MAX_MODEL_LEN="10", SM_VLLM_MAX_NUM_SEQS="3")
    assert sim.batch.size == 3
    status, _, data = _call(sim, {"prompt": "one two three four", "max_tokens": 7})
    assert status == 400 and json.loads(data)["error"]["message"] == (
        "This model's maximum context length is 10 tokens. However, you requested 11 tokens (4 in the messages, "
        "7 in the completion). Please reduce the length of the messages or completion.")
    assert _call(sim, {"prompt": "one two three four", "max_tokens": 6})[0] == 200


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.unit.test_routing import BODY  # noqa: E402


@pytest.mark.parametrize("api", ["tgi", "lmi", "vllm"])
def test_any_body_gets_an_answer_never_an_exception(api):
    """A model that raises answers 500 and the caller sees a crash; each server refuses bad input
    with its own 4xx instead (a content part's number for text and deep nesting once raised)."""
    sim = LlmSim.from_env({"LLM_SIM_API": api, "LLM_SIM_TIME_SCALE": "0", "LLM_SIM_MAX_OUTPUT_TOKENS": "3"}, 1)

    @settings(max_examples=400, derandomize=True, deadline=None)
    @given(st.one_of(BODY.map(lambda b: json.dumps(b).encode()), st.binary(max_size=40), st.just(b"[" * 5000 + b"]" * 5000)))
    def run(body):
        reply = sim.invoke(Invocation(body=body))
        assert reply.status in (200, 400, 422), reply.body
        if not isinstance(reply.body, bytes):
            b"".join(reply.body)  # a stream is produced to its end without raising

    run()

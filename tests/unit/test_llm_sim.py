import json
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


@pytest.mark.parametrize("body", [b"not json", b'{"inputs": 5}', b'{"inputs": "x", "parameters": {"max_new_tokens": 0}}'])
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

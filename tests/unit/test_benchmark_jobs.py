"""What a benchmark job hands AIPerf: llm-sim's tokenizer (its counts are llm-sim's), and the
command line made from a WorkloadSpec."""

import json
from pathlib import Path

import pytest

from sagemaker_emu.benchmarks import aiperf_args, tokenizer
from sagemaker_emu.control import workload_spec
from sagemaker_emu.kv import blocks


def test_llm_sims_tokenizer_splits_as_llm_sim_and_each_entry_is_one_of_its_tokens():
    shipped = json.loads((tokenizer.DIRECTORY / "tokenizer.json").read_text())
    split = shipped["pre_tokenizer"]["pretokenizers"][1]["pattern"]["Regex"]
    assert split == blocks._TOKEN.pattern  # the same pattern llm-sim counts with
    vocab = shipped["model"]["vocab"]
    assert all(blocks.tokens(word) == [word] for word in vocab)  # so decoded ids count one each
    assert shipped["model"]["unk_token"] in vocab and sorted(vocab.values()) == list(range(len(vocab)))


def test_a_hub_id_comes_from_the_local_cache_or_becomes_llm_sims(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    path, note = tokenizer.resolve("meta-llama/Llama-3.2-1B")
    assert path == tokenizer.DIRECTORY and "not in the local Hugging Face cache" in note
    snapshot = tmp_path / "models--meta-llama--Llama-3.2-1B" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "tokenizer.json").write_text("{}")
    assert tokenizer.resolve("meta-llama/Llama-3.2-1B") == (snapshot, None)


def test_the_spec_becomes_aiperfs_flags_and_the_job_sets_its_own():
    spec = workload_spec.parse(json.dumps({"benchmark": {"type": "aiperf"}, "parameters": {
        "isl": 64, "concurrency": 3, "fixed_schedule": False, "extra_inputs": {"max_tokens": 8},
        "input_file": "/opt/ml/input/data/dataset/trace.jsonl", "tokenizer": "gpt2"}}))
    args = aiperf_args.arguments(spec["parameters"], aiperf_args.urls("http://h:1", "ep", ["a", "b"]), "a", "tok",
                                 Path("/t"), Path("/art"), Path("/in"))
    flags = dict(zip(args[1::1], args[2::1]))
    assert args[0] == "profile" and flags["--prompt-input-tokens-mean"] == "64" and flags["--concurrency"] == "3"
    assert "--streaming" in args and "--fixed-schedule" not in args  # true flags given, false ones left out
    assert flags["--extra-inputs"] == '{"max_tokens": 8}' and flags["--random-seed"] == "42"
    assert flags["--input-file"] == "/in/dataset/trace.jsonl" and flags["--tokenizer"] == "/t"
    assert [args[i + 1] for i, a in enumerate(args) if a == "--url"] == [
        "http://h:1/endpoints/ep/inference-components/a/openai/v1",
        "http://h:1/endpoints/ep/inference-components/b/openai/v1"]
    with pytest.raises(ValueError, match="leaves its channel"):
        aiperf_args.local_path("/opt/ml/input/data/dataset/../../../etc/passwd", Path("/in"))
    with pytest.raises(ValueError, match="is not under"):
        aiperf_args.local_path("/etc/passwd", Path("/in"))

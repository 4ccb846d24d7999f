"""llm-sim's tokenizer as a Hugging Face `tokenizer.json`, so that AIPerf counts the tokens
llm-sim counts: llm-sim splits text into words and single punctuation marks (`\\w+|[^\\w\\s]`,
sagemaker_emu/kv/blocks.py); this tokenizer splits the same way (on white space, then that
pattern) and maps each piece to one id (a word-level model). Its vocabulary is the words of
AIPerf's synthetic corpus by frequency and ASCII punctuation; any other piece (llm-sim's
answers included) is `unk`, itself one word, so counts agree whatever the text.

`python -m sagemaker_emu.benchmarks.tokenizer CORPUS` writes llm_sim_tokenizer/ anew from a
corpus (AIPerf's is aiperf/dataset/generator/assets/shakespeare.txt); the files are committed.
"""

from __future__ import annotations

import collections
import json
import os
import re
import string
import sys
from pathlib import Path

DIRECTORY = Path(__file__).parent / "llm_sim_tokenizer"
PATTERN = r"\w+|[^\w\s]"  # kv/blocks.py's _TOKEN: one token per match
UNKNOWN = "unk"
WORDS = 4000  # the corpus's most frequent words; every other piece is `unk`


def build(corpus: str, words: int = WORDS) -> dict:
    counts = collections.Counter(re.findall(PATTERN, corpus))
    vocabulary = list(dict.fromkeys([UNKNOWN, *string.punctuation, *(w for w, _ in counts.most_common(words))]))
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [], "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"},
            {"type": "Split", "pattern": {"Regex": PATTERN}, "behavior": "Isolated", "invert": False}]},
        "post_processor": None, "decoder": None,
        "model": {"type": "WordLevel", "vocab": {w: i for i, w in enumerate(vocabulary)}, "unk_token": UNKNOWN},
    }


def write(corpus: str, directory: Path = DIRECTORY) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokenizer.json").write_text(json.dumps(build(corpus), separators=(",", ":")))
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": UNKNOWN, "model_max_length": 1_000_000}))


def hub_cache() -> Path:
    """Where Hugging Face keeps downloaded models (HF_HUB_CACHE, else HF_HOME/hub)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


def resolve(name: str | None) -> tuple[Path, str | None]:
    """The tokenizer directory for a workload's `tokenizer` (a Hub id, or a local directory),
    and a line for the job's log when it is not that one. Nothing reaches the network: a Hub
    id comes from the local Hugging Face cache or is replaced by llm-sim's tokenizer."""
    if not name:
        return DIRECTORY, "No tokenizer was named: counting tokens with llm-sim's tokenizer."
    if Path(name).is_dir() and (Path(name) / "tokenizer.json").is_file():
        return Path(name), None
    cached = hub_cache() / ("models--" + name.replace("/", "--")) / "snapshots"
    for snapshot in sorted(cached.glob("*"), key=lambda p: p.stat().st_mtime, reverse=True):
        if (snapshot / "tokenizer.json").is_file():
            return snapshot, None
    return DIRECTORY, (f"Tokenizer {name} is not in the local Hugging Face cache ({hub_cache()}), and the emulator "
                       "does not reach the network: counting tokens with llm-sim's tokenizer instead.")


if __name__ == "__main__":
    write(Path(sys.argv[1]).read_text())

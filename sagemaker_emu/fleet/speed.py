"""How fast llm-sim runs on an instance type: its accelerator's spec sheet against the A10G's.

A prompt's prefill is compute-bound, so its time goes with the accelerator's dense FP16 rate;
each decode step streams the model's weights from memory, so its time goes with memory
bandwidth (the roofline model). llm-sim's defaults describe a 7B model on one A10G (an
ml.g5 instance: 14 GB of weights over 600 GB/s is 23 ms a step, the default is 25), so the
worker gets both speeds relative to the A10G and divides its default times by them; an
explicit `LLM_SIM_*` time still wins. One accelerator serves a model: tensor parallelism
gains a small model little (docs/performance.md). A type without an accelerator in the
table runs at the defaults.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from sagemaker_emu.fleet.placement import hardware
from sagemaker_emu.worker.builtin.knobs import DECODE_SPEED, INSTANCE_TYPE, PREFILL_SPEED

TABLE = Path(__file__).with_name("accelerators.json")
REFERENCE = "A10G"


@functools.lru_cache(maxsize=None)
def accelerators() -> dict[str, dict]:
    """accelerators.json: each accelerator's row, by name."""
    return {name: spec for name, spec in json.loads(TABLE.read_text()).items() if not name.startswith("_")}


def speeds(instance_type: str) -> tuple[float, float]:
    """(prefill, decode) speed of the instance type's accelerator relative to the A10G; (1, 1)
    for a type with none the table knows."""
    spec = hardware(instance_type)
    chip = accelerators().get(spec.accelerator) if spec is not None else None
    if chip is None:
        return 1.0, 1.0
    ref = accelerators()[REFERENCE]
    return chip["fp16_tflops"] / ref["fp16_tflops"], chip["memory_bandwidth_gbs"] / ref["memory_bandwidth_gbs"]


def worker_env(instance_type: str) -> dict[str, str]:
    """What a worker on an instance of this type is told about it."""
    if not instance_type:
        return {}
    prefill, decode = speeds(instance_type)
    return {INSTANCE_TYPE: instance_type, PREFILL_SPEED: repr(prefill), DECODE_SPEED: repr(decode)}

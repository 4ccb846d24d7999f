"""Instance types set llm-sim's speed through their accelerator's spec sheet (fleet/speed.py),
and capacity limits what can be had (fleet/instance_capacity.py)."""

import json

import pytest

from sagemaker_emu.fleet import speed
from sagemaker_emu.fleet.instance_capacity import InstanceCapacity
from sagemaker_emu.fleet.placement import TABLE, hardware
from sagemaker_emu.worker.builtin.llm_sim import Profile


def test_every_gpu_type_names_an_accelerator_the_speed_table_has():
    for name in json.loads(TABLE.read_text()):
        spec = hardware(name)
        if spec is not None and spec.accelerators:
            assert spec.accelerator in speed.accelerators(), name


def test_speeds_are_relative_to_the_a10g_that_llm_sims_defaults_describe():
    assert speed.speeds("ml.g5.2xlarge") == (1.0, 1.0)
    prefill, decode = speed.speeds("ml.g6e.2xlarge")  # L40S: 362 dense TFLOPS, 864 GB/s
    assert prefill == pytest.approx(362 / 70) and decode == pytest.approx(864 / 600)
    assert speed.speeds("ml.g6.xlarge")[1] == pytest.approx(0.5)  # L4: half the A10G's bandwidth
    assert speed.speeds("ml.m5.large") == (1.0, 1.0)  # no accelerator: the defaults
    assert speed.worker_env("") == {}


def test_llm_sim_divides_its_default_times_by_the_speeds_and_explicit_knobs_win():
    env = speed.worker_env("ml.p5.48xlarge")
    base, fast = Profile.from_env({}), Profile.from_env(env)
    assert fast.decode_ms_per_token == pytest.approx(base.decode_ms_per_token * 600 / 3350)
    assert fast.prefill_ms_per_token == pytest.approx(base.prefill_ms_per_token * 70 / 989)
    assert Profile.from_env({**env, "LLM_SIM_DECODE_MS_PER_TOKEN": "25"}).decode_ms_per_token == 25
    serial = Profile.from_env({**env, "LLM_SIM_PROFILE": "serial"})
    assert serial.max_batch == 1 and serial.decode_ms_per_token == fast.decode_ms_per_token


def test_capacity_limits_new_instances_and_a_reset_restores_the_servers_own_limits():
    capacity = InstanceCapacity.parse(["ml.p5.48xlarge=1"])
    assert capacity.take("ml.p5.48xlarge") and not capacity.take("ml.p5.48xlarge")
    assert capacity.take("ml.g5.xlarge")  # unlimited
    capacity.give("ml.p5.48xlarge")
    capacity.limit("ml.p5.48xlarge", 0)
    assert not capacity.take("ml.p5.48xlarge")
    capacity.reset()
    assert capacity.take("ml.p5.48xlarge")
    assert capacity.view()["ml.p5.48xlarge"] == {"limit": 1, "in_use": 1}
    for bad in ("p5=1", "ml.p5.48xlarge", "ml.p5.48xlarge=-1"):
        with pytest.raises(ValueError):
            InstanceCapacity.parse([bad])

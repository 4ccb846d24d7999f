import pytest

from sagemaker_emu.fleet.load import Load


def test_every_exit_path_gives_the_slot_back():
    load = Load()
    with load.dispatch():
        assert load.snapshot().in_flight == 1
    with load.dispatch() as outcome:
        outcome.failed = True
    with pytest.raises(RuntimeError):
        with load.dispatch():
            raise RuntimeError("worker crashed")
    with load.dispatch() as outcome:
        outcome.cancelled = True
    snap = load.snapshot()
    assert (snap.in_flight, snap.served, snap.errors) == (0, 3, 2)

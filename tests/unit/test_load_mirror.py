"""The instance's `in_flight` attribute, which strategies read, follows its load's counter."""

from types import SimpleNamespace

from sagemaker_emu.fleet.load import Load


def test_the_mirror_follows_every_dispatch_and_its_end():
    owner = SimpleNamespace(in_flight=0)
    load = Load(mirror=owner)
    with load.dispatch():
        assert owner.in_flight == load.in_flight == 1
        with load.dispatch():
            assert owner.in_flight == 2
    assert owner.in_flight == load.in_flight == 0
    try:
        with load.dispatch():
            raise RuntimeError("the call failed")
    except RuntimeError:
        pass
    assert owner.in_flight == 0 and load.snapshot().errors == 1

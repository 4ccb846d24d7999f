"""Shared fixtures: the real server in its own process on an ephemeral loopback port, from the
project's one harness (sagemaker_emu/testing.py)."""

from __future__ import annotations

import pytest

from sagemaker_emu.testing import EmulatorProcess, client


LATE = ("test_fleet_contract", "test_ray_fleet", "test_live_view", "test_sagemaker_sdk_v3")  # what they need is installed while the others run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser and SDK v3 tests run last: Chromium (.ci/run) and the SDK v3's environment
    (`make test`) are installed while the others run."""
    items.sort(key=lambda item: next((n + 1 for n, name in enumerate(LATE) if name in item.nodeid), 0))


@pytest.fixture(scope="session")
def server():
    srv = EmulatorProcess()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def fast():
    """A server whose clock runs 60 times faster (`--clock-speed 60`): a 60-second alarm period,
    cooldown or bake lasts one second. One per test module."""
    srv = EmulatorProcess("--clock-speed", "60")
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _clean_state(request):
    if "server" in request.fixturenames:
        request.getfixturevalue("server").reset()


@pytest.fixture
def sm(server):
    return client(server.url)


@pytest.fixture
def rt(server):
    return client(server.url, "sagemaker-runtime")


@pytest.fixture
def sm_unvalidated(server):
    """A client that sends what botocore would refuse, as a user with validation off can."""
    return client(server.url, parameter_validation=False)

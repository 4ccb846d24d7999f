"""pytest plugin (registered through the `pytest11` entry point).

Fixtures:
- `sagemaker_emu` (session): a running emulator with `.url`, `.sagemaker` and `.runtime`
  (ready boto3 clients), `.environment()`, `.reset()`. During each test that uses it, the
  AWS_ENDPOINT_URL_* variables, dummy credentials and a region point plain
  `boto3.client("sagemaker")` at it; tests that do not use it see the environment untouched.
- `sagemaker_emu_clean` (function): the same object, reset before the test.

Options: `--sagemaker-emu-seed N`, `--sagemaker-emu-model-timeout S`, and
`--sagemaker-emu-image-map FILE`. `--sagemaker-emu-autouse` (or `sagemaker_emu_autouse = true`
in the ini file) starts it for every test, so tests that build their own boto3 clients reach
it without asking for a fixture: the way to move a moto-based suite over without editing it.
"""

from __future__ import annotations

from typing import Iterator

import pytest

from sagemaker_emu import aws_hosts
from sagemaker_emu.testing import EmulatorServer, patched_environment


class Emulator:
    """What the fixtures yield."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.url = server.url
        self.sagemaker = server.client("sagemaker")
        self.runtime = server.client("sagemaker-runtime")

    def environment(self) -> dict[str, str]:
        return self.server.environment()

    def fault(self, kind: str, endpoint: str, **rule) -> dict:
        """Inject a fault (see sagemaker_emu/runtime/faults.py); returns the rule with its id."""
        return self.server.fault(kind, endpoint, **rule)

    def reset(self) -> None:
        self.server.reset()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sagemaker-emu")
    group.addoption("--sagemaker-emu-seed", type=int, default=None, help="seed for routing and simulated latency")
    group.addoption("--sagemaker-emu-model-timeout", type=float, default=None, help="seconds before ModelError")
    group.addoption("--sagemaker-emu-image-map", default=None, help="image map file (TOML or JSON)")
    group.addoption("--sagemaker-emu-autouse", action="store_true", default=False,
                    help="run the emulator for every test (for suites that build their own clients)")
    parser.addini("sagemaker_emu_autouse", type="bool", default=False,
                  help="run the emulator for every test")


def _settings(config: pytest.Config) -> dict:
    settings = {}
    for option, field in (("sagemaker_emu_seed", "seed"), ("sagemaker_emu_model_timeout", "model_timeout"),
                          ("sagemaker_emu_image_map", "image_map")):
        value = config.getoption(option)
        if value is not None:
            settings[field] = value
    return settings


@pytest.fixture(scope="session")
def sagemaker_emu(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    with EmulatorServer(**_settings(request.config)) as server:
        yield Emulator(server)


@pytest.fixture
def sagemaker_emu_clean(sagemaker_emu: Emulator) -> Emulator:
    sagemaker_emu.reset()
    return sagemaker_emu


@pytest.fixture(autouse=True)
def _sagemaker_emu_autouse(request: pytest.FixtureRequest) -> Iterator[None]:
    """Point the environment at the emulator for the tests that use it, and only for them:
    a later test that never asked for it must not find its variables (moto's would break)."""
    config = request.config
    if config.getoption("sagemaker_emu_autouse") or config.getini("sagemaker_emu_autouse"):
        request.getfixturevalue("sagemaker_emu_clean")
    if not {"sagemaker_emu", "sagemaker_emu_clean"} & set(request.fixturenames) and \
            not (config.getoption("sagemaker_emu_autouse") or config.getini("sagemaker_emu_autouse")):
        yield
        return
    aws_hosts.install()  # the SDK's calls to fixed AWS hosts (its STS call) follow the variables too
    with patched_environment(request.getfixturevalue("sagemaker_emu").environment()):
        yield

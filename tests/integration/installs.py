"""The environments `make test` installs in the background (the SageMaker SDK v3, NVIDIA AIPerf):
the tests that need one wait for its install to end, or are skipped where it is missing."""

import time
from pathlib import Path

import pytest

INSTALL_LIMIT_S = 1800


def wait_for_install(status_file: str | None, installed: str, what: str, how: str) -> None:
    """Under `make test` (`status_file`: the install's outcome, written whole by a rename when
    it ends), wait for it; elsewhere, skip without `installed`, saying `how` to get it."""
    if status_file:
        status, deadline = Path(status_file), time.monotonic() + INSTALL_LIMIT_S
        while not status.exists():
            assert time.monotonic() < deadline, f"the {what} install did not end within {INSTALL_LIMIT_S} s"
            time.sleep(1)
        if status.read_text().strip() != "0":
            log = status.with_suffix(".log")
            pytest.fail(f"installing {what} failed:\n{log.read_text()[-3000:] if log.exists() else ''}")
    if not Path(installed).exists():
        pytest.skip(f"no {what} at {installed} ({how} builds it)")

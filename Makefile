# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080
ARGS   ?=

# What every environment is installed from: the exact versions `make test` last passed with
# (`pip freeze --all` of each environment), so a fresh clone installs the same next month.
# `make lock` installs the newest releases instead, writes these files anew and runs the suite:
# upgrading is a commit of its own. pip applies PIP_CONSTRAINT to every install it makes, the
# build environments of packages built from source included.
LOCK      := constraints/main.txt
LOCK_SDK3 := constraints/sdk3.txt
LOCK_AIPERF := constraints/aiperf.txt
LOCK_RAY := constraints/ray.txt
CONSTRAIN ?= 1
pin = $(if $(filter 1,$(CONSTRAIN)),PIP_CONSTRAINT=$(CURDIR)/$(1),env -u PIP_CONSTRAINT)
PIP = --progress-bar off --disable-pip-version-check

.PHONY: run test install install-dev install-sdk3 install-aiperf install-ray lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files make a re-run skip the install when neither pyproject.toml nor the lock changed.
$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	@echo "Installing sagemaker-emu into $(VENV); pip prints each package as it goes"
	$(call pin,$(LOCK)) $(BIN)/python -m pip install $(PIP) --upgrade pip setuptools wheel
	$(call pin,$(LOCK)) $(BIN)/python -m pip install $(PIP) -e .
	touch $@

# The tests also cover the SageMaker Python SDK (the `sdk` extra): it installs in seconds.
$(VENV)/.installed-dev: pyproject.toml $(LOCK) | $(BIN)/python
	@echo "Installing sagemaker-emu with the dev and sdk extras into $(VENV) (about a minute on a fresh machine)"
	$(call pin,$(LOCK)) $(BIN)/python -m pip install $(PIP) --upgrade pip setuptools wheel
	$(call pin,$(LOCK)) $(BIN)/python -m pip install $(PIP) -e '.[dev,sdk]'
	touch $@ $(VENV)/.installed

# The SDK v3 tests run its scripts in an environment of their own (v2 and v3 share the name
# `sagemaker`); pip prints each package, and its wheel cache makes a second install quick.
SDK3 ?= .venv-sdk3
$(SDK3)/.installed: pyproject.toml $(LOCK_SDK3)
	@echo "Installing the SageMaker Python SDK v3 into $(SDK3) (about 2 minutes on a fresh machine)"
	$(PYTHON) -m venv $(SDK3)
	$(call pin,$(LOCK_SDK3)) $(SDK3)/bin/python -m pip install $(PIP) --upgrade pip setuptools wheel
	$(call pin,$(LOCK_SDK3)) $(SDK3)/bin/python -m pip install $(PIP) -e '.[sdk3]'
	touch $@

# AI benchmark jobs run NVIDIA AIPerf, as SageMaker does. It brings its own numpy, pydantic and
# more (about 1.2 GB), so the tests run it from an environment of its own, as a command.
AIPERF ?= .venv-aiperf
$(AIPERF)/.installed: pyproject.toml $(LOCK_AIPERF)
	@echo "Installing NVIDIA AIPerf into $(AIPERF) (about a minute on a fresh machine)"
	$(PYTHON) -m venv $(AIPERF)
	$(call pin,$(LOCK_AIPERF)) $(AIPERF)/bin/python -m pip install $(PIP) --upgrade pip setuptools wheel
	$(call pin,$(LOCK_AIPERF)) $(AIPERF)/bin/python -m pip install $(PIP) 'aiperf>=0.13,<0.14'
	touch $@

# `serve --fleet ray` (the `ray` extra, about 300 MB): the Ray fleet tests start a Ray cluster
# and the emulator from an environment of their own, so the main one stays light.
RAY ?= .venv-ray
$(RAY)/.installed: pyproject.toml $(LOCK_RAY)
	@echo "Installing sagemaker-emu with Ray into $(RAY) (about 30 seconds on a fresh machine)"
	$(PYTHON) -m venv $(RAY)
	$(call pin,$(LOCK_RAY)) $(RAY)/bin/python -m pip install $(PIP) --upgrade pip setuptools wheel
	$(call pin,$(LOCK_RAY)) $(RAY)/bin/python -m pip install $(PIP) -e '.[ray]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-sdk3: $(SDK3)/.installed
install-aiperf: $(AIPERF)/.installed
install-ray: $(RAY)/.installed

run: install
	$(BIN)/sagemaker-emu serve --host $(HOST) --port $(PORT) $(ARGS)

# The SDK v3 and AIPerf installs (minutes) run in the background while the other tests run;
# the tests that need them run late and wait for them (they read each status file, written
# whole by a rename: tests/integration/test_sagemaker_sdk_v3.py, test_sagemaker_ai_benchmarks.py).
background = rm -f $(1).status; \
	if $(MAKE) -s -q $(1)/.installed 2>/dev/null; then echo 0 > $(1).status; else \
	  echo "Installing $(2) into $(1) in the background (about $(3); log: $(1).log)"; \
	  ( $(MAKE) --no-print-directory $(1)/.installed > $(1).log 2>&1; \
	    echo $$? > $(1).status.part; mv $(1).status.part $(1).status ) & \
	fi

test: install-dev
	@$(call background,$(SDK3),the SageMaker Python SDK v3,2 minutes); \
	$(call background,$(AIPERF),NVIDIA AIPerf,a minute); \
	$(call background,$(RAY),Ray,30 seconds); \
	echo "ruff check (the linter) and mypy (the type checker), configured in pyproject.toml"; \
	$(BIN)/ruff check sagemaker_emu tests && $(BIN)/mypy; code=$$?; \
	if [ $$code -eq 0 ]; then \
	  SAGEMAKER_EMU_SDK3_PYTHON=$(CURDIR)/$(SDK3)/bin/python SAGEMAKER_EMU_SDK3_STATUS=$(CURDIR)/$(SDK3).status \
	  SAGEMAKER_EMU_TEST_AIPERF=$(CURDIR)/$(AIPERF)/bin/aiperf SAGEMAKER_EMU_AIPERF_STATUS=$(CURDIR)/$(AIPERF).status \
	  SAGEMAKER_EMU_RAY_PYTHON=$(CURDIR)/$(RAY)/bin/python SAGEMAKER_EMU_RAY_STATUS=$(CURDIR)/$(RAY).status \
	    $(BIN)/python -m pytest $(ARGS); code=$$?; \
	fi; wait; exit $$code

# Upgrade deliberately: every environment anew from the newest releases, their versions written
# to the lock files, then the whole suite. Commit the lock files (and the fixes the suite asks
# for) together.
lock:
	rm -rf $(VENV) $(SDK3) $(AIPERF) $(RAY)
	$(MAKE) --no-print-directory CONSTRAIN=0 install-dev install-sdk3 install-aiperf
	{ echo "# Written by \`make lock\` from $(VENV): what \`make run\` and \`make test\` install."; \
	  $(BIN)/python -m pip freeze --all --exclude-editable; } > $(LOCK)
	{ echo "# Written by \`make lock\` from $(SDK3): what the SageMaker SDK v3 tests install."; \
	  $(SDK3)/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK_SDK3)
	{ echo "# Written by \`make lock\` from $(AIPERF): what the AI benchmark job tests install (NVIDIA AIPerf)."; \
	  $(AIPERF)/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK_AIPERF)
	$(MAKE) --no-print-directory LOCK_RAY=$(LOCK) install-ray  # Ray's newest, beside the main environment's versions
	{ echo "# Written by \`make lock\` from $(RAY): what the Ray fleet tests install."; \
	  $(RAY)/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK_RAY)
	touch $(VENV)/.installed $(VENV)/.installed-dev $(SDK3)/.installed $(AIPERF)/.installed $(RAY)/.installed
	$(MAKE) --no-print-directory test

# The four environments take about 3.2 GB; this frees them (and the background installs' logs).
clean:
	rm -rf $(VENV) $(SDK3) $(SDK3).log $(SDK3).status $(AIPERF) $(AIPERF).log $(AIPERF).status \
	  $(RAY) $(RAY).log $(RAY).status build *.egg-info \
	  .pytest_cache

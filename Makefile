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
CONSTRAIN ?= 1
pin = $(if $(filter 1,$(CONSTRAIN)),PIP_CONSTRAINT=$(CURDIR)/$(1),env -u PIP_CONSTRAINT)
PIP = --progress-bar off --disable-pip-version-check

.PHONY: run test install install-dev install-sdk3 lock clean

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

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev
install-sdk3: $(SDK3)/.installed

run: install
	$(BIN)/sagemaker-emu serve --host $(HOST) --port $(PORT) $(ARGS)

# The SDK v3 install (minutes) runs in the background while the other tests run; its own tests
# run last and wait for it (tests/integration/test_sagemaker_sdk_v3.py reads the status file,
# written whole by a rename).
test: install-dev
	@rm -f $(SDK3).status; \
	if $(MAKE) -s -q $(SDK3)/.installed 2>/dev/null; then echo 0 > $(SDK3).status; else \
	  echo "Installing the SageMaker Python SDK v3 into $(SDK3) in the background (about 2 minutes; log: $(SDK3).log)"; \
	  ( $(MAKE) --no-print-directory $(SDK3)/.installed > $(SDK3).log 2>&1; \
	    echo $$? > $(SDK3).status.part; mv $(SDK3).status.part $(SDK3).status ) & \
	fi; \
	echo "ruff check (the linter) and mypy (the type checker), configured in pyproject.toml"; \
	$(BIN)/ruff check sagemaker_emu tests && $(BIN)/mypy; code=$$?; \
	if [ $$code -eq 0 ]; then \
	  SAGEMAKER_EMU_SDK3_PYTHON=$(CURDIR)/$(SDK3)/bin/python SAGEMAKER_EMU_SDK3_STATUS=$(CURDIR)/$(SDK3).status \
	    $(BIN)/python -m pytest $(ARGS); code=$$?; \
	fi; wait; exit $$code

# Upgrade deliberately: both environments anew from the newest releases, their versions written
# to the lock files, then the whole suite. Commit the lock files (and the fixes the suite asks
# for) together.
lock:
	rm -rf $(VENV) $(SDK3)
	$(MAKE) --no-print-directory CONSTRAIN=0 install-dev install-sdk3
	{ echo "# Written by \`make lock\` from $(VENV): what \`make run\` and \`make test\` install."; \
	  $(BIN)/python -m pip freeze --all --exclude-editable; } > $(LOCK)
	{ echo "# Written by \`make lock\` from $(SDK3): what the SageMaker SDK v3 tests install."; \
	  $(SDK3)/bin/python -m pip freeze --all --exclude-editable; } > $(LOCK_SDK3)
	touch $(VENV)/.installed $(VENV)/.installed-dev $(SDK3)/.installed
	$(MAKE) --no-print-directory test

# The two environments take about 1.7 GB; this frees them (and the SDK v3 install's log).
clean:
	rm -rf $(VENV) $(SDK3) $(SDK3).log $(SDK3).status build *.egg-info .pytest_cache

# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080
ARGS   ?=

.PHONY: run test install install-dev install-sdk3 clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files make a re-run skip the install when pyproject.toml is unchanged.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "Installing sagemaker-emu into $(VENV); pip prints each package as it goes"
	$(BIN)/python -m pip install --progress-bar off -e .
	touch $@

# The tests also cover the SageMaker Python SDK (the `sdk` extra): it installs in seconds.
$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	@echo "Installing sagemaker-emu with the dev and sdk extras into $(VENV) (about a minute on a fresh machine)"
	$(BIN)/python -m pip install --progress-bar off -e '.[dev,sdk]'
	touch $@ $(VENV)/.installed

# The SDK v3 tests run its scripts in an environment of their own (v2 and v3 share the name
# `sagemaker`); pip prints each package, and its wheel cache makes a second install quick.
SDK3 ?= .venv-sdk3
$(SDK3)/.installed: pyproject.toml
	@echo "Installing the SageMaker Python SDK v3 into $(SDK3) (about 3 minutes on a fresh machine)"
	$(PYTHON) -m venv $(SDK3)
	$(SDK3)/bin/python -m pip install --quiet --upgrade pip
	$(SDK3)/bin/python -m pip install --progress-bar off -e '.[sdk3]'
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
	  echo "Installing the SageMaker Python SDK v3 into $(SDK3) in the background (about 3 minutes; log: $(SDK3).log)"; \
	  ( $(MAKE) --no-print-directory $(SDK3)/.installed > $(SDK3).log 2>&1; \
	    echo $$? > $(SDK3).status.part; mv $(SDK3).status.part $(SDK3).status ) & \
	fi; \
	SAGEMAKER_EMU_SDK3_PYTHON=$(CURDIR)/$(SDK3)/bin/python SAGEMAKER_EMU_SDK3_STATUS=$(CURDIR)/$(SDK3).status \
	  $(BIN)/python -m pytest $(ARGS); code=$$?; wait; exit $$code

clean:
	rm -rf $(VENV) $(SDK3) $(SDK3).log $(SDK3).status build *.egg-info .pytest_cache

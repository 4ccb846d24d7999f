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

test: install-dev install-sdk3
	SAGEMAKER_EMU_SDK3_PYTHON=$(CURDIR)/$(SDK3)/bin/python $(BIN)/python -m pytest $(ARGS)

clean:
	rm -rf $(VENV) $(SDK3) build *.egg-info .pytest_cache

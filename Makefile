# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8080
ARGS   ?=

.PHONY: run test install install-dev clean

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

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/sagemaker-emu serve --host $(HOST) --port $(PORT) $(ARGS)

test: install-dev
	$(BIN)/python -m pytest $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

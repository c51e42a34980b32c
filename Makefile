# Two commands on a fresh machine: `make run` and `make test`.
# Both install from hash-locked files (`make lock` regenerates them from pyproject.toml):
# `make run` the runtime lock only (no test tools in production), `make test` and CI the
# test lock (runtime + the test extra). See README, "Dependencies".
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime
RUNTIME_LOCK := requirements.lock
TEST_LOCK := requirements-test.lock
# The locks are resolved for every platform pinbot runs on, for this Python and newer.
LOCK_PYTHON := 3.11
UV := $(VENV)-lock/bin/uv
UV_COMPILE = $(UV) pip compile pyproject.toml --generate-hashes --universal \
	--python-version $(LOCK_PYTHON) --custom-compile-command "make lock" --quiet

.PHONY: run test demo bench lint lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Development, tests and CI: the test lock, then pinbot itself (editable, no dependencies:
# every one of them came from the lock, each checked against its hash).
$(STAMP): $(TEST_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(TEST_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP) $(RUNTIME_STAMP)

# Production: the runtime lock only.
$(RUNTIME_STAMP): $(RUNTIME_LOCK) pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(RUNTIME_LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(RUNTIME_STAMP)

run: $(RUNTIME_STAMP)
	$(BIN)/pinbot run

demo: $(RUNTIME_STAMP)
	$(BIN)/pinbot demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Four workers on two cores: about a third of the suite waits on sockets, subprocesses and
# leases rather than computing, so two more workers overlap those waits (5.2 min, not 6.0).
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -n 4

bench: $(STAMP)
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

# Re-resolve both locks from pyproject.toml (after adding or raising a dependency), with uv
# in a venv of its own so neither lock's environment gets it. Needs PyPI; review the diff.
lock:
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV)-lock && $(VENV)-lock/bin/python -m pip install --quiet uv; }
	$(UV_COMPILE) --output-file $(RUNTIME_LOCK)
	$(UV_COMPILE) --extra test --output-file $(TEST_LOCK)

clean:
	rm -rf $(VENV) $(VENV)-lock .pytest_cache .ruff_cache *.egg-info

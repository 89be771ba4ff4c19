# The two commands of the README, plus the developer's helpers.
#   make run   - the main job on a local Ray (installs what it needs first)
#   make test  - ruff, mypy and the test suite (installs what it needs first)
SHELL := /bin/bash
VENV ?= .venv
export MUJOCO_GL ?= egl
export RAY_USAGE_STATS_ENABLED ?= 0
export WANDB_MODE ?= offline

.PHONY: setup run test lint bench-rollout bench-replay
setup:
	@scripts/setup.sh

run: setup
	$(VENV)/bin/aime run --config quickstart $(ARGS)

test: setup lint
	$(VENV)/bin/python -m pytest -q $(ARGS)

lint: setup
	$(VENV)/bin/ruff check aime tests benchmarks examples
	$(VENV)/bin/ruff format --check aime tests benchmarks examples
	$(VENV)/bin/mypy aime

bench-rollout: setup
	$(VENV)/bin/python benchmarks/rollout.py

bench-replay: setup
	$(VENV)/bin/python benchmarks/replay.py

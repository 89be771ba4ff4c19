"""Fixtures shared by the world-model tests (helpers live in model_helpers.py)."""

from __future__ import annotations

import pytest
from model_helpers import load_preset

from aime.models import ModelConfig


@pytest.fixture(scope="session")
def tiny_cfg() -> ModelConfig:
    return load_preset("tiny")


@pytest.fixture(scope="session")
def default_cfg() -> ModelConfig:
    return load_preset("default")

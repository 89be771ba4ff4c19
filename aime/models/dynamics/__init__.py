"""Deterministic recurrent state h_t."""

from aime.models.dynamics.lstm import Dynamics, State

__all__ = ["Dynamics", "State"]

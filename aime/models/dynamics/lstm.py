"""Deterministic dynamics: a multi-layer LSTM over [z_t, c_t, A_t, a_t] with a learned initial state.

The state is reset to the learned initial state wherever ``is_first`` is set, so one window can hold
several episodes. Orthogonal recurrent weights keep early gradients from exploding or vanishing
through the long unroll; the forget-gate bias starts at 1 so the state is kept by default.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

State = tuple[Tensor, Tensor]  # (h, c), each (L, B, H)


class Dynamics(nn.Module):
    def __init__(self, *, input_dim: int, hidden_dim: int, layers: int):
        super().__init__()
        self.hidden_dim, self.layers = hidden_dim, layers
        self.lstm = nn.LSTM(input_dim, hidden_dim, num_layers=layers)
        self.h0 = nn.Parameter(torch.zeros(layers, 1, hidden_dim))
        self.c0 = nn.Parameter(torch.zeros(layers, 1, hidden_dim))
        for name, weight in self.lstm.named_parameters():
            if name.startswith("weight"):
                for gate in weight.chunk(4, dim=0):  # i, f, g, o: orthogonal per gate
                    nn.init.orthogonal_(gate)
            else:
                nn.init.zeros_(weight)
                if name.startswith("bias_ih"):
                    weight.data[hidden_dim : 2 * hidden_dim] = 1.0

    def initial_state(self, batch: int) -> State:
        return self.h0.expand(-1, batch, -1), self.c0.expand(-1, batch, -1)

    def reset(self, state: State, mask: Tensor) -> State:
        """Replace the state of rows where ``mask`` (B,) bool is set with the learned initial state."""
        h0, c0 = self.initial_state(mask.shape[0])
        m = mask.view(1, -1, 1)
        return torch.where(m, h0, state[0]), torch.where(m, c0, state[1])

    def step(self, inputs: Tensor, state: State) -> State:
        """inputs (B, D_in) -> new state; the top layer's h is ``state[0][-1]`` (B, H)."""
        _, (h, c) = self.lstm(inputs.unsqueeze(0), (state[0].contiguous(), state[1].contiguous()))
        return h, c

    @staticmethod
    def top(state: State) -> Tensor:
        return state[0][-1]  # (B, H)

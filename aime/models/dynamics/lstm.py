"""Deterministic dynamics: a multi-layer LSTM over [z_t, c_t, A_t, a_t] with a learned initial state.

The state is reset to the learned initial state wherever ``is_first`` is set, so one window can hold
several episodes. Orthogonal recurrent weights keep early gradients from exploding or vanishing
through the long unroll; the forget-gate bias starts at 1 so the state is kept by default.

The model steps one frame at a time, so the layers are ``nn.LSTMCell``s (a fused gate kernel on
CUDA) rather than one ``nn.LSTM``: cuDNN's sequence kernel called on sequences of length one costs
far more per call, and ``torch.compile`` traces cells but not ``nn.LSTM``. The math is the same
(gates i, f, g, o); checkpoints written with the earlier ``nn.LSTM`` layout still load.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor, nn

State = tuple[Tensor, Tensor]  # (h, c), each (L, B, H)

_NN_LSTM_KEY = re.compile(r"lstm\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)$")


class Dynamics(nn.Module):
    def __init__(self, *, input_dim: int, hidden_dim: int, layers: int):
        super().__init__()
        self.input_dim, self.hidden_dim, self.layers = input_dim, hidden_dim, layers
        self.cells = nn.ModuleList(
            nn.LSTMCell(input_dim if i == 0 else hidden_dim, hidden_dim) for i in range(layers)
        )
        self.h0 = nn.Parameter(torch.zeros(layers, 1, hidden_dim))
        self.c0 = nn.Parameter(torch.zeros(layers, 1, hidden_dim))
        for name, weight in self.cells.named_parameters():
            if ".weight" in name:
                for gate in weight.chunk(4, dim=0):  # i, f, g, o: orthogonal per gate
                    nn.init.orthogonal_(gate)
            else:
                nn.init.zeros_(weight)
                if name.endswith("bias_ih"):
                    weight.data[hidden_dim : 2 * hidden_dim] = 1.0
        self.register_load_state_dict_pre_hook(_from_nn_lstm_keys)

    def initial_state(self, batch: int) -> State:
        return self.h0.expand(-1, batch, -1), self.c0.expand(-1, batch, -1)

    def reset(self, state: State, mask: Tensor) -> State:
        """Replace the state of rows where ``mask`` (B,) bool is set with the learned initial state."""
        h0, c0 = self.initial_state(mask.shape[0])
        m = mask.view(1, -1, 1)
        return torch.where(m, h0, state[0]), torch.where(m, c0, state[1])

    def step(self, inputs: Tensor, state: State) -> State:
        """inputs (B, D_in) -> new state; the top layer's h is ``state[0][-1]`` (B, H).

        The state keeps the learned initial state's dtype (fp32). Under CUDA autocast the cells return
        bf16, and a compiled per-frame step guards on its inputs' dtypes: a bf16 state from the second
        frame on compiled the step twice (the first frame's fp32 state, then bf16). The values are the
        cells' own; only their container widens.
        """
        hs, cs = [], []
        x = inputs
        for layer, cell in enumerate(self.cells):
            x, c = cell(x, (state[0][layer], state[1][layer]))
            hs.append(x)
            cs.append(c)
        return torch.stack(hs).to(self.h0.dtype), torch.stack(cs).to(self.c0.dtype)

    @staticmethod
    def top(state: State) -> Tensor:
        return state[0][-1]  # (B, H)


def _from_nn_lstm_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Rename ``<prefix>lstm.weight_ih_l0`` (the former nn.LSTM layout) to ``<prefix>cells.0.weight_ih``."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        match = _NN_LSTM_KEY.match(key[len(prefix) :])
        if match:
            state_dict[f"{prefix}cells.{match.group(2)}.{match.group(1)}"] = state_dict.pop(key)

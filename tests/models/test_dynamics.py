import torch

from aime.models.dynamics import Dynamics


def test_step_shapes_and_learned_initial_state():
    dyn = Dynamics(input_dim=5, hidden_dim=8, layers=3)
    state = dyn.initial_state(4)
    assert state[0].shape == state[1].shape == (3, 4, 8)
    state = dyn.step(torch.randn(4, 5), state)
    assert dyn.top(state).shape == (4, 8)
    assert dyn.h0.requires_grad and dyn.c0.requires_grad


def test_reset_restores_the_initial_state_only_where_masked():
    torch.manual_seed(0)
    dyn = Dynamics(input_dim=5, hidden_dim=8, layers=2)
    with torch.no_grad():
        dyn.h0.normal_()
    state = dyn.step(torch.randn(3, 5), dyn.initial_state(3))
    reset = dyn.reset(state, torch.tensor([True, False, True]))
    torch.testing.assert_close(reset[0][:, 0], dyn.h0[:, 0])
    torch.testing.assert_close(reset[0][:, 1], state[0][:, 1])
    torch.testing.assert_close(reset[1][:, 2], dyn.c0[:, 0])


def test_recurrent_weights_are_orthogonal_per_gate():
    dyn = Dynamics(input_dim=5, hidden_dim=8, layers=1)
    for gate in dyn.cells[0].weight_hh.detach().chunk(4, dim=0):
        torch.testing.assert_close(gate @ gate.T, torch.eye(8), atol=1e-5, rtol=0)
    assert float(dyn.cells[0].bias_ih[8:16].detach().mean()) == 1.0  # forget gate starts open


def nn_lstm_with_the_same_weights(dyn: Dynamics) -> torch.nn.LSTM:
    lstm = torch.nn.LSTM(dyn.input_dim, dyn.hidden_dim, num_layers=dyn.layers)
    for layer, cell in enumerate(dyn.cells):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            setattr(lstm, f"{name}_l{layer}", getattr(cell, name))
    return lstm


def test_step_equals_nn_lstm_on_the_same_parameters_values_and_gradients():
    torch.manual_seed(0)
    dyn = Dynamics(input_dim=5, hidden_dim=8, layers=3)
    lstm = nn_lstm_with_the_same_weights(dyn)
    x = torch.randn(4, 5)
    h0, c0 = (s + torch.randn_like(s) for s in dyn.initial_state(4))
    h, c = dyn.step(x, (h0, c0))
    _, (h_ref, c_ref) = lstm(x.unsqueeze(0), (h0.contiguous(), c0.contiguous()))
    torch.testing.assert_close(h, h_ref)
    torch.testing.assert_close(c, c_ref)
    params = list(dyn.cells.parameters())
    grads = torch.autograd.grad(h[-1].sum() + c.sum(), params)
    grads_ref = torch.autograd.grad(h_ref[-1].sum() + c_ref.sum(), params)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, g_ref)


def test_checkpoints_in_the_nn_lstm_layout_still_load():
    torch.manual_seed(0)
    dyn = Dynamics(input_dim=5, hidden_dim=8, layers=2)
    old_layout = {
        f"lstm.{name}_l{layer}": getattr(cell, name).detach().clone() + 1.0
        for layer, cell in enumerate(dyn.cells)
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    }
    old_layout.update(h0=dyn.h0.detach(), c0=dyn.c0.detach())
    fresh = Dynamics(input_dim=5, hidden_dim=8, layers=2)
    fresh.load_state_dict(old_layout)  # strict: every key mapped, none missing
    torch.testing.assert_close(fresh.cells[1].weight_hh, old_layout["lstm.weight_hh_l1"])


def test_a_world_model_checkpoint_in_the_nn_lstm_layout_still_loads(tiny_cfg):
    from aime.models import WorldModel

    torch.manual_seed(0)
    model = WorldModel(tiny_cfg)
    state = model.state_dict()
    old_layout = {}
    for key, value in state.items():
        parts = key.split(".")  # dynamics.cells.<layer>.<name> -> dynamics.lstm.<name>_l<layer>
        if parts[:2] == ["dynamics", "cells"]:
            key = f"dynamics.lstm.{parts[3]}_l{parts[2]}"
        old_layout[key] = value + 1.0 if key.startswith("dynamics.lstm.") else value
    assert any(k.startswith("dynamics.lstm.") for k in old_layout)
    fresh = WorldModel(tiny_cfg)
    fresh.load_state_dict(old_layout)  # strict
    torch.testing.assert_close(fresh.dynamics.cells[0].weight_ih, model.dynamics.cells[0].weight_ih + 1.0)

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
    for gate in dyn.lstm.weight_hh_l0.detach().chunk(4, dim=0):
        torch.testing.assert_close(gate @ gate.T, torch.eye(8), atol=1e-5, rtol=0)
    assert float(dyn.lstm.bias_ih_l0[8:16].detach().mean()) == 1.0  # forget gate starts open

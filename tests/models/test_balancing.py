"""RGB and sum balancing, the surrogate loss, and data-parallel agreement with an injected reduce."""

import copy
import math
import threading

import pytest
import torch
from model_helpers import moving_squares, with_pillars

from aime.models import WorldModel
from aime.models.balancing import GradientBalancer, rgb_combine, surrogate_loss, task_gradients
from aime.models.config import BalancingConfig


def test_rgb_keeps_gradients_when_proximity_is_one():
    grads = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    out = rgb_combine(grads, None, decay=0.9, proximity=1.0, scale="unit")
    torch.testing.assert_close(out.update, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(out.rotation, torch.zeros(2))


def test_rgb_rotates_halfway_at_proximity_one_half():
    grads = torch.tensor([[1.0, 0.0], [0.0, 1.0]])  # consensus at 45 degrees, each task 45 degrees off
    out = rgb_combine(grads, None, decay=0.9, proximity=0.5, scale="unit")
    torch.testing.assert_close(out.rotation, torch.full((2,), math.pi / 8))
    torch.testing.assert_close(out.consensus, torch.tensor([1.0, 1.0]) / math.sqrt(2))


def test_rgb_moves_conflicting_tasks_toward_the_consensus_most():
    grads = torch.tensor([[1.0, 0.1, 0.0], [1.0, -0.1, 0.0], [-0.5, 1.0, 0.0]])
    out = rgb_combine(grads, None, decay=0.9, proximity=0.3, scale="mean_norm")
    assert int(out.rotation.argmax()) == 2  # the conflicting task rotates most
    unit = grads / grads.norm(dim=1, keepdim=True)
    assert float(out.update @ out.consensus) > float(unit.mean(0) @ out.consensus)
    assert float(out.update.norm()) <= float(grads.norm(dim=1).mean())  # a mean of unit vectors, rescaled


def test_rgb_ignores_tasks_with_zero_gradient_and_uses_the_ema_consensus():
    grads = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    out = rgb_combine(grads, torch.tensor([0.0, 1.0]), decay=0.5, proximity=1.0, scale="mean_norm")
    assert out.active.tolist() == [True, False]
    torch.testing.assert_close(out.update, torch.tensor([2.0, 0.0]))
    torch.testing.assert_close(out.consensus, torch.tensor([1.0, 1.0]) / math.sqrt(2))


def _rgb_reference(grads, consensus, *, decay, proximity):
    """RGB written plainly, task by task (mean_norm scale), to check the masked implementation."""
    norms = grads.norm(dim=1)
    units = [g / n for g, n in zip(grads, norms, strict=True) if n > 1e-12]
    normalize = torch.nn.functional.normalize
    step = normalize(torch.stack(units).mean(0), dim=0)
    d = step if consensus is None else normalize(decay * consensus + (1 - decay) * step, dim=0)
    rotated = []
    for u in units:
        cos = float((u @ d).clamp(-1, 1))
        theta = math.atan2((1 - proximity) * math.sin(math.acos(cos)), proximity + (1 - proximity) * cos)
        e = normalize(d - cos * u, dim=0)
        rotated.append(math.cos(theta) * u + math.sin(theta) * e)
    return torch.stack(rotated).mean(0) * norms[norms > 1e-12].mean(), d


@pytest.mark.parametrize("with_consensus", [False, True])
def test_rgb_matches_a_task_by_task_reference_with_inactive_tasks(with_consensus):
    g = torch.Generator().manual_seed(3)
    grads = torch.randn(5, 40, generator=g, dtype=torch.float64)
    grads[1] = 0.0  # a task that does not reach these parameters
    grads[3] = 0.0
    consensus = torch.nn.functional.normalize(torch.randn(40, generator=g, dtype=torch.float64), dim=0)
    consensus = consensus if with_consensus else None
    out = rgb_combine(grads, consensus, decay=0.8, proximity=0.3, scale="mean_norm")
    update, d = _rgb_reference(grads, consensus, decay=0.8, proximity=0.3)
    torch.testing.assert_close(out.update, update)
    torch.testing.assert_close(out.consensus, d)
    assert out.active.tolist() == [True, False, True, False, True]
    assert out.rotation[[1, 3]].tolist() == [0.0, 0.0] and bool((out.rotation[[0, 2, 4]] > 0).all())


def test_rgb_with_no_active_task_keeps_the_consensus_and_updates_nothing():
    grads = torch.zeros(3, 4)
    kept = torch.tensor([0.0, 1.0, 0.0, 0.0])
    out = rgb_combine(grads, kept, decay=0.5, proximity=0.5)
    torch.testing.assert_close(out.consensus, kept)
    torch.testing.assert_close(out.update, torch.zeros(4))
    assert not bool(out.active.any())
    first = rgb_combine(grads, None, decay=0.5, proximity=0.5)
    torch.testing.assert_close(first.consensus, torch.zeros(4))  # no direction yet


def test_surrogate_gradient_is_the_update():
    params = [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(4))]
    update = torch.arange(10, dtype=torch.float32)
    surrogate_loss(params, update).backward()
    torch.testing.assert_close(torch.cat([p.grad.reshape(-1) for p in params]), update)


def test_task_gradients_match_separate_backward_passes():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    unused = torch.nn.Parameter(torch.ones(1))
    grads = task_gradients([(w**2).sum(), (3 * w).sum()], [w, unused])
    torch.testing.assert_close(grads, torch.tensor([[2.0, 4.0, 0.0], [3.0, 3.0, 0.0]]))


@pytest.mark.parametrize("mode", ["sum", "rgb"])
def test_balancer_trains_the_world_model(tiny_cfg, mode):
    cfg = with_pillars(tiny_cfg, adversarial=True)
    torch.manual_seed(0)
    model = WorldModel(cfg)
    batch = moving_squares(cfg, batch=2, steps=3)
    balancer = GradientBalancer(BalancingConfig(mode=mode))
    params = [p for p in model.parameters() if p.requires_grad]
    loss = model.losses(model(batch["obs"], batch["action"], batch["is_first"]), batch)
    result = balancer(loss.tasks, params)
    result.loss.backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in params)
    if mode == "rgb":
        assert balancer.consensus is not None and set(result.stats) >= {"balance/elbo_rotation"}


class ThreadGroup:
    """An in-process stand-in for a process group: each 'rank' thread calls its own reduce."""

    def __init__(self, world: int):
        self.barrier = threading.Barrier(world)
        self.slots: list[torch.Tensor | None] = [None] * world

    def mean_for(self, rank: int):  # type: ignore[no-untyped-def]
        def reduce(x: torch.Tensor) -> torch.Tensor:
            self.slots[rank] = x.detach().clone()
            self.barrier.wait()
            out = torch.stack(self.slots).mean(0)  # type: ignore[arg-type]
            self.barrier.wait()
            return out

        return reduce


def test_two_ranks_apply_the_same_rgb_update(tiny_cfg):
    cfg = with_pillars(tiny_cfg, perception=False)
    torch.manual_seed(0)
    base = WorldModel(cfg)
    batches = [moving_squares(cfg, batch=2, steps=3, seed=s) for s in (1, 2)]  # each rank its own data
    group = ThreadGroup(2)
    models = [copy.deepcopy(base) for _ in range(2)]
    balancers = [GradientBalancer(BalancingConfig(mode="rgb"), reduce=group.mean_for(r)) for r in range(2)]
    task_grads: list[list[torch.Tensor]] = [[], []]
    applied: list[list[torch.Tensor]] = [[], []]
    errors: list[BaseException] = []

    def run(rank: int) -> None:
        try:
            torch.manual_seed(100 + rank)  # ranks draw different noise, as they would
            model, batch = models[rank], batches[rank]
            params = list(model.parameters())
            # The update is scaled by the mean task-gradient norm (~1e5 here at initialisation): a
            # larger rate overflows the second step to inf/NaN on some draws, and NaN != NaN.
            opt = torch.optim.SGD(params, lr=1e-6)
            for _ in range(2):  # two steps: the consensus state must stay in lockstep too
                loss = model.losses(model(batch["obs"], batch["action"], batch["is_first"]), batch)
                tasks = [loss.tasks[n] for n in sorted(loss.tasks)]
                task_grads[rank].append(task_gradients(tasks, params, retain_graph=True))
                opt.zero_grad()
                balancers[rank](loss.tasks, params).loss.backward()
                applied[rank].append(torch.cat([p.grad.reshape(-1) for p in params]))
                opt.step()
        except BaseException as error:  # surfaced below; a dead thread would hang the barrier
            errors.append(error)
            group.barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert not torch.equal(task_grads[0][0], task_grads[1][0])  # the ranks really saw different data
    assert all(torch.isfinite(update).all() for update in applied[0] + applied[1])
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(balancers[0].consensus, balancers[1].consensus, rtol=0, atol=0)
    # The update is RGB of the rank-averaged task gradients, carrying the consensus across steps.
    consensus = None
    for step in range(2):
        mean = (task_grads[0][step] + task_grads[1][step]) / 2
        expected = rgb_combine(mean, consensus, decay=0.9, proximity=0.5)
        consensus = expected.consensus
        torch.testing.assert_close(applied[0][step], expected.update, rtol=1e-5, atol=1e-7)

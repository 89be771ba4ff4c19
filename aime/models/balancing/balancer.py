"""GradientBalancer: task losses -> one surrogate loss to back-propagate, by RGB or a plain sum.

    balancer = GradientBalancer(cfg.optim.balancing, reduce=all_reduce_mean)   # reduce: injected
    result = balancer(loss.tasks, [p for p in model.parameters() if p.requires_grad])
    result.loss.backward()            # or engine.backward(result.loss) under DeepSpeed

Cost per step: ``sum`` is one backward pass; ``rgb`` is one backward per task (autograd.grad with
the graph retained) plus a cheap backward of the surrogate, and holds n_tasks flat fp32 gradient
copies. Under data parallelism ``reduce`` must average a tensor over ranks (e.g. an all_reduce
followed by a division by the world size): the per-task gradients are averaged before balancing,
so every rank holds the same consensus and applies the same update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from torch import Tensor, nn

from aime.models.balancing.rgb import rgb_combine
from aime.models.balancing.surrogate import surrogate_loss, task_gradients
from aime.models.common import Reduce, identity_reduce
from aime.models.config import BalancingConfig


@dataclass
class BalanceResult:
    loss: Tensor  # back-propagate this; its gradient is the balanced update
    stats: dict[str, Tensor] = field(default_factory=dict)  # detached; convert at log time (no syncs here)


class GradientBalancer:
    def __init__(self, cfg: BalancingConfig, *, reduce: Reduce = identity_reduce):
        self.cfg = cfg
        self.reduce = reduce
        self.consensus: Tensor | None = None  # RGB state; checkpoint it with state_dict()

    def __call__(self, tasks: Mapping[str, Tensor], params: Sequence[nn.Parameter]) -> BalanceResult:
        names = sorted(tasks)  # a fixed order on every rank
        if self.cfg.mode == "sum":
            return BalanceResult(loss=sum(tasks[n] for n in names))  # type: ignore[arg-type]
        grads = self.reduce(task_gradients([tasks[n] for n in names], params))  # (n, P)
        result = rgb_combine(
            grads,
            self.consensus,
            decay=self.cfg.consensus_decay,
            proximity=self.cfg.proximity,
            scale=self.cfg.scale,
        )
        self.consensus = result.consensus
        stats = {"balance/update_norm": result.update.norm()}
        for i, name in enumerate(names):
            stats[f"balance/{name}_grad_norm"] = grads[i].norm()
            stats[f"balance/{name}_cos_consensus"] = result.cos_to_consensus[i]
            stats[f"balance/{name}_rotation"] = result.rotation[i]
        return BalanceResult(loss=surrogate_loss(params, result.update.to(grads.dtype)), stats=stats)

    def state_dict(self) -> dict[str, Tensor | None]:
        return {"consensus": self.consensus}

    def load_state_dict(self, state: Mapping[str, Tensor | None]) -> None:
        self.consensus = state["consensus"]

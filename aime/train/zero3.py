"""ZeRO-3 support for the world model: DeepSpeed's backward hooks made to see dataclass outputs.

Why ZeRO-3 failed ("active_backward_submodules is empty during backward pass"): ZeRO-3 wraps every
submodule in two autograd hooks. A *pre-backward* hook goes on the tensors a submodule returns and
gathers its parameters again when their gradient arrives; a *post-backward* hook goes on the tensors
it receives and releases those parameters once their gradient is computed. DeepSpeed finds those
tensors only in tensors, tuples, lists and dicts. Several of our submodules return dataclasses
(``DPGMMPrior`` -> ``PriorStats``, ``SlotAttentionPosterior`` -> ``SlotOutput``, the perception stream,
its tokenizer and quantizer, and ``WorldModel`` itself): DeepSpeed warns once ("unknown inputs or
outputs type") and attaches no pre-backward hook, but the post-backward hook on their inputs still
fires. The prior's is the first to fire with nothing gathered, and DeepSpeed 0.19's coordinator
asserts. (Left alone, a dataclass-returning module that owns parameters directly, like the slot
posterior's ``slot_embed``, would also run its backward with released, empty parameters.) The
per-step rollout that reuses the posterior, the LSTM and the slot attention T times is fine:
DeepSpeed ref-counts repeated forwards of one module.

The fix, kept out of the model math: after ``deepspeed.initialize``, one more forward hook on every
submodule passes the tensors inside a returned dataclass (recursively, and through dicts, lists and
tuples) through the module's own ZeRO-3 pre-backward function, exactly what DeepSpeed does for the
types it knows.

Outside training steps the engine's module is not a usable model under ZeRO-3 (its parameters are
empty placeholders between submodule calls): ``evaluation_model`` gives a plain copy to evaluate, and
``checkpoint.save_checkpoint`` gathers the consolidated weights.

Not supported under ZeRO-3 (``driver.check_train_config`` refuses them up front, see there):
RGB balancing (per-task ``autograd.grad`` over parameters that ZeRO-3 partitions) and the
adversarial pillar (its generator loss runs the discriminator through ``torch.func.functional_call``
with detached parameter copies, which ZeRO-3's hooks reject).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from aime.models.config import ModelConfig


def check_zero3_supported(model: ModelConfig) -> None:
    """Raise a ValueError naming what in ``model`` ZeRO-3 cannot train, and what to use instead."""
    problems = []
    if model.optim.balancing.mode == "rgb":
        problems.append(
            "model.optim.balancing.mode=rgb: RGB takes per-task gradients with torch.autograd.grad over "
            "the parameters, which ZeRO-3 partitions and gathers only inside its own single backward; "
            "use model.optim.balancing.mode=sum"
        )
    if model.adversarial.enabled:
        problems.append(
            "model.adversarial.enabled=true: the generator loss runs the discriminator through "
            "torch.func.functional_call with detached parameter copies, which ZeRO-3's hooks reject; "
            "use model.adversarial.enabled=false"
        )
    if problems:
        raise ValueError(
            "train.zero_stage=3 cannot train this model:\n  - "
            + "\n  - ".join(problems)
            + "\nor use train.zero_stage<=2 (ZeRO-2 supports them)"
        )


def expose_dataclass_outputs(module: nn.Module) -> int:
    """Let ZeRO-3's pre-backward hooks see the tensors in dataclass outputs (after ``deepspeed.initialize``).

    ``module`` is the engine's module (``engine.module``). Submodules DeepSpeed did not hook (those
    inside a ZeRO-3 leaf module) are skipped; calling it twice hooks nothing twice. Returns the number
    of submodules hooked.
    """
    if "pre_bwd_fn" not in vars(module):
        raise RuntimeError(
            f"{type(module).__name__} has no ZeRO-3 pre-backward function: call this on engine.module after "
            "deepspeed.initialize with zero_optimization.stage=3 (a DeepSpeed other than 0.19 may hook "
            "modules differently: see aime/train/zero3.py)"
        )
    hooked = 0
    for sub in module.modules():
        if "pre_bwd_fn" in vars(sub) and not getattr(sub, "_aime_dataclass_hook", False):
            sub.register_forward_hook(_dataclass_output_hook)
            sub._aime_dataclass_hook = True  # type: ignore[assignment]
            hooked += 1
    return hooked


def _dataclass_output_hook(module: nn.Module, inputs: Any, output: Any) -> Any:
    if _is_dataclass_instance(output):
        return _apply_to_tensors(module.pre_bwd_fn.apply, output)  # type: ignore[union-attr,arg-type]
    return None  # keep the output (tensors, tuples, dicts: DeepSpeed's own hook handled them)


def _apply_to_tensors(function: Callable[[Tensor], Tensor], value: Any) -> Any:
    if isinstance(value, Tensor):
        return function(value)
    if _is_dataclass_instance(value):
        out = copy.copy(value)
        for f in dataclasses.fields(value):
            object.__setattr__(out, f.name, _apply_to_tensors(function, getattr(value, f.name)))
        return out
    if isinstance(value, dict):
        return type(value)((k, _apply_to_tensors(function, v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        items = [_apply_to_tensors(function, v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def _is_dataclass_instance(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def evaluation_model(engine: Any) -> nn.Module:
    """The engine's model to evaluate outside training steps: ``engine.module`` below ZeRO-3.

    Under ZeRO-3 the engine's module works only inside the engine's forward and backward: methods that
    are not a forward (``encode``, ``imagine``, the LSTM's learned initial state) read partitioned,
    empty parameters, and every submodule call gathers its parameters collectively, so ranks scoring
    different numbers of windows would hang. There it is a plain copy instead (collective: every rank
    calls it), holding the full current weights on every rank.
    """
    if engine.zero_optimization_stage() != 3:
        return engine.module
    import deepspeed
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

    module = engine.module
    with torch.random.fork_rng(devices=[]):  # building it must not move the training's random stream
        plain = type(module)(module.cfg)
    # Only the partitioned ones: GatheredParameters partitions what it gathered on exit, even parameters
    # ZeRO-3 keeps whole on purpose (under stage3_param_persistence_threshold elements).
    missing = [p for p in module.parameters() if p.ds_status == ZeroParamStatus.NOT_AVAILABLE]
    with deepspeed.zero.GatheredParameters(missing, enabled=bool(missing)):
        plain.load_state_dict(module.state_dict())
    return plain.to(engine.device).train(module.training)

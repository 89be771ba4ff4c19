"""The DeepSpeed config, generated from the typed config: never hand-edited JSON.

The optimizer (AdamW over the model's per-pillar parameter groups) and the lr schedule are built in
Python and handed to ``deepspeed.initialize``; this dict sets what DeepSpeed itself owns: batch
arithmetic, ZeRO, precision and gradient clipping.
"""

from __future__ import annotations

from typing import Any

from aime.config.schema import TrainConfig


def deepspeed_config(train: TrainConfig, *, grad_clip: float, world_size: int, bf16: bool) -> dict[str, Any]:
    zero: dict[str, Any] = {"stage": train.zero_stage}
    if train.zero_stage >= 2:
        # Overlap and contiguous buckets are GPU stream optimisations; both are harmless on the CPU.
        zero |= {"overlap_comm": bf16, "contiguous_gradients": True}
    if train.zero_stage == 3:
        # Consolidated weights for model.safetensors are gathered at save time (see checkpoint.py).
        zero |= {"stage3_gather_16bit_weights_on_model_save": True}
    return {
        "train_micro_batch_size_per_gpu": train.batch_size,
        "gradient_accumulation_steps": train.grad_accum,
        "train_batch_size": train.batch_size * train.grad_accum * world_size,
        "gradient_clipping": grad_clip,
        "zero_optimization": zero,
        # bf16 is torch autocast in the training step over fp32 weights, not DeepSpeed's bf16 mode:
        # that casts every weight and buffer to bf16, which the codebook's EMA statistics and the
        # fp32 likelihood/KL sums do not tolerate (measured: dtype errors in the quantiser's EMA).
        "bf16": {"enabled": False},
        # DeepSpeed's engine turns an outer torch.autocast off inside its forward unless this section
        # enables it (the model then silently ran in fp32 on GPUs). No lower-precision-safe modules:
        # DeepSpeed would otherwise reduce the gradients of Linear/Conv weights in bf16.
        "torch_autocast": {"enabled": bf16, "dtype": "bfloat16", "lower_precision_safe_modules": []},
        "fp16": {"enabled": False},
        "zero_allow_untested_optimizer": True,  # AdamW from torch, with per-pillar parameter groups
        "steps_per_print": 10**9,  # aime logs its own metrics
        "wall_clock_breakdown": False,
    }


def resolve_bf16(train: TrainConfig, on_gpu: bool) -> bool:
    """bf16 autocast on GPUs, fp32 on CPUs, unless the config says otherwise."""
    return on_gpu if train.bf16 == "auto" else bool(train.bf16)


def resolve_compile_rollout(train: TrainConfig, on_gpu: bool) -> str | None:
    """The torch.compile mode for ``WorldModel.compile_rollout``, or None for eager.

    auto: CUDA graphs of the compiled frame step on GPUs (the loop is launch-bound there: on an H100
    they took the model step from 74.6 to 158.7 sequences/s, see aime/models/README.md), eager on CPUs
    (compiling costs more than it saves) and under ZeRO-3 (its parameters are gathered per submodule
    at run time, which a compiled graph cannot see). With gradient accumulation below ZeRO-2, ``.grad``
    would keep accumulating in memory the next micro-batch's graph replay reuses, so auto compiles
    without graphs there; ZeRO-2 copies each gradient into its own buffers as it arrives.
    """
    if train.compile_rollout == "auto":
        if not on_gpu or train.zero_stage == 3:
            return None
        return "reduce-overhead" if train.grad_accum == 1 or train.zero_stage == 2 else "default"
    return None if train.compile_rollout == "none" else train.compile_rollout

from __future__ import annotations

import math

import pytest

from aime.config import Config, ConfigError, load_config
from aime.train.deepspeed_config import deepspeed_config, resolve_bf16, resolve_compile_rollout
from aime.train.schedule import apply_peak_rates, build_optimizer, warmup_cosine


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_generated_config_is_accepted_by_deepspeed(stage):
    from deepspeed.runtime.config import DeepSpeedConfig

    cfg = load_config(Config, None, [f"train.zero_stage={stage}", "train.grad_accum=2", "train.batch_size=4"])
    # DeepSpeedConfig checks the batch arithmetic against this process's world size: 1.
    generated = deepspeed_config(cfg.train, grad_clip=cfg.model.optim.grad_clip, world_size=1, bf16=False)
    parsed = DeepSpeedConfig(generated)
    assert parsed.zero_optimization_stage == stage
    assert parsed.train_batch_size == 4 * 2 and parsed.gradient_clipping == cfg.model.optim.grad_clip
    two = deepspeed_config(cfg.train, grad_clip=1.0, world_size=2, bf16=True)
    assert two["train_batch_size"] == 4 * 2 * 2
    assert two["bf16"] == {"enabled": False}  # bf16 is autocast in the step; the weights stay fp32
    # ... which DeepSpeed's forward keeps only with torch_autocast on; gradients still reduced in fp32
    assert two["torch_autocast"] == {"enabled": True, "dtype": "bfloat16", "lower_precision_safe_modules": []}


def test_bf16_follows_the_device_unless_set():
    cfg = load_config(Config, None)
    assert resolve_bf16(cfg.train, on_gpu=True) and not resolve_bf16(cfg.train, on_gpu=False)
    forced = load_config(Config, None, ["train.bf16=false"])
    assert not resolve_bf16(forced.train, on_gpu=True)


def test_bad_zero_stage_names_the_key():
    with pytest.raises(ConfigError, match="zero_stage must be 0, 1, 2 or 3"):
        load_config(Config, None, ["train.zero_stage=4"])


def test_warmup_then_cosine_to_the_floor():
    lr = [warmup_cosine(s, warmup_steps=10, total_steps=110, min_lr_ratio=0.1) for s in range(120)]
    assert lr[0] == pytest.approx(0.1) and lr[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(lr[:10], lr[1:10], strict=False))  # rising during warm-up
    assert all(a >= b for a, b in zip(lr[10:], lr[11:], strict=False))  # then never rising
    assert lr[60] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr[110] == pytest.approx(0.1) and lr[119] == pytest.approx(0.1)


def test_a_resumed_schedule_takes_its_peak_rates_from_its_config_not_the_checkpoint():
    import torch

    class OneGroup(torch.nn.Linear):
        def param_groups(self, lr: float) -> list[dict]:
            return [{"params": list(self.parameters()), "lr": lr}]

    def config(lr: float) -> Config:
        return load_config(Config, "tiny", [f"model.optim.lr={lr}", "train.warmup_steps=2", "train.steps=20"])

    def rate(cfg: Config, step: int) -> float:
        t = cfg.train
        factor = warmup_cosine(step, warmup_steps=2, total_steps=20, min_lr_ratio=t.min_lr_ratio)
        return cfg.model.optim.lr * factor

    _, donor = build_optimizer(OneGroup(2, 2), config(1e-3))
    for _ in range(5):
        donor.optimizer.step()
        donor.step()
    perturbed = config(4e-3)  # PBT: the donor's checkpoint, a perturbed rate
    _, resumed = build_optimizer(OneGroup(2, 2), perturbed)
    peaks = list(resumed.base_lrs)
    resumed.optimizer.load_state_dict(donor.optimizer.state_dict())
    resumed.load_state_dict(donor.state_dict())
    assert resumed.base_lrs == [pytest.approx(1e-3)]  # what loading alone leaves: the donor's rate
    apply_peak_rates(resumed, peaks)
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(rate(perturbed, 5))
    resumed.optimizer.step()
    resumed.step()  # the schedule goes on from the donor's step, at the new peak
    assert resumed.optimizer.param_groups[0]["lr"] == pytest.approx(rate(perturbed, 6))
    with pytest.raises(ValueError, match="2 peak rates for 1 groups"):
        apply_peak_rates(resumed, [1.0, 2.0])


def test_compile_rollout_auto_uses_cuda_graphs_only_where_they_are_safe():
    def resolved(*overrides: str, on_gpu: bool = True) -> str | None:
        return resolve_compile_rollout(load_config(Config, None, list(overrides)).train, on_gpu)

    assert resolved() == "reduce-overhead"  # GPU, ZeRO-2
    assert resolved(on_gpu=False) is None
    assert resolved("train.zero_stage=3") is None
    assert resolved("train.zero_stage=0", "train.grad_accum=2") == "default"  # no graphs: .grad accumulates
    assert resolved("train.zero_stage=2", "train.grad_accum=2") == "reduce-overhead"
    assert resolved("train.compile_rollout=none") is None
    assert resolved("train.compile_rollout=default", on_gpu=False) == "default"

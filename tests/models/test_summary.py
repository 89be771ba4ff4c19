import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aime.models import WorldModel
from aime.models.summary import count_flops, summary

ROOT = Path(__file__).resolve().parents[2]


def test_summary_lists_components_and_flops(tiny_cfg):
    text = summary(tiny_cfg, seq_len=4)
    for word in ("encoder", "prior", "perception.tokenizer", "total", "forward + losses", "train step (rgb)"):
        assert word in text, (word, text)


def test_the_open_loop_loss_is_counted_too():
    # The gpu preset's open-loop loss imagines frames and perceives them without gradients (a
    # parameter's expanded view there once broke the counter's hooks on module inputs).
    from dataclasses import replace

    from aime.config import Config, load_config

    cfg = load_config(Config, "gpu").model
    assert cfg.loss.overshoot > 0
    torch.manual_seed(0)
    with_loss = count_flops(WorldModel(cfg), seq_len=16)
    without = count_flops(WorldModel(replace(cfg, loss=replace(cfg.loss, overshoot=0.0))), seq_len=16)
    assert with_loss["forward"] > without["forward"] > 0 and with_loss["backward"] > without["backward"]


def test_flops_scale_with_sequence_length(tiny_cfg):
    torch.manual_seed(0)
    model = WorldModel(tiny_cfg)
    short, long = count_flops(model, seq_len=2), count_flops(model, seq_len=4)
    assert short["forward"] > 0 and short["backward"] > short["forward"]
    assert 1.5 < long["forward"] / short["forward"] < 2.5


@pytest.mark.parametrize("balancing", ["sum", "rgb"])
def test_benchmark_script_prints_json_on_cpu(balancing):
    import json

    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "model_step.py"),
        "--device",
        "cpu",
        "--preset",
        "tiny",
        "--batch-size",
        "2",
        "--seq-len",
        "3",
        "--steps",
        "1",
        "--warmup",
        "2",
        "--modes",
        "fp32",
        "--balancing",
        balancing,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    report = json.loads(out.stdout)
    (row,) = report["results"]
    assert row["balancing"] == balancing and row["sequences_per_s"] > 0 and report["flops_per_sequence"] > 0
    assert len(row["warmup_step_s"]) == 2 and all(s > 0 for s in row["warmup_step_s"])  # each timed alone
    assert report["cudagraph_asserts"] == "on"  # torch's default unless asked

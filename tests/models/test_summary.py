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
        "0",
        "--modes",
        "fp32",
        "--balancing",
        balancing,
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    report = json.loads(out.stdout)
    (row,) = report["results"]
    assert row["balancing"] == balancing and row["sequences_per_s"] > 0 and report["flops_per_sequence"] > 0

"""Figures of a training run, written to ``<run_dir>/figures/`` as PNG (matplotlib, no display).

loss_curves.png      total and per-task losses over steps, from metrics.jsonl
reconstructions.png  ground truth over the model's reconstructions, one window
open_loop.png        context frames | ground truth | imagined frames under the true actions
attention.png        the posterior attention map over the frames (when the pillar is on)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aime import metrics as M
from aime.storage import atomic_save_figure

FIGURES = ("loss_curves.png", "reconstructions.png", "open_loop.png", "attention.png")


def write_figures(
    checkpoint: str | Path, run_dir: Path, replay_root: str, *, seed: int = 0, model: bool = True
) -> list[Path]:
    """All figures for the model in ``checkpoint`` (only the loss curves with ``model=False``, as after
    a tokenizer-stage run); returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    from aime.checkpoints import load_world_model
    from aime.replay import WindowSampler

    out = run_dir / "figures"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if (run_dir / "metrics.jsonl").exists():
        written.append(loss_curves(run_dir / "metrics.jsonl", out / "loss_curves.png"))
    if not model:
        return written
    world_model = load_world_model(checkpoint).eval()
    T = 8
    batch = WindowSampler(replay_root, seq_len=T, seed=seed).sample(np.arange(2))
    obs = torch.from_numpy(batch["pixels"])  # (2, T, 3, H, W) uint8
    action = torch.from_numpy(batch["action"])  # (2, T, A)
    is_first = torch.from_numpy(batch["is_first"])
    with torch.no_grad():
        output = world_model(obs, action, is_first)
        context = T // 2
        imagined = world_model.imagine(
            obs[:, :context], action[:, :context], action[:, context:], temperature=0.0
        )
    truth = obs[0].float() / 255.0  # (T, 3, H, W)
    written.append(
        _strip([truth, output.reconstruction[0]], ["truth", "reconstruction"], out / "reconstructions.png")
    )
    rows = [truth, torch.cat([truth[:context], imagined[0].clamp(0, 1)])]
    written.append(_strip(rows, ["truth", f"{context} context | imagined"], out / "open_loop.png"))
    if output.attention_map is not None:
        maps = output.attention_map[0].unsqueeze(1).expand(-1, 3, -1, -1)  # (T, 3, M, M)
        maps = maps / maps.amax(dim=(-1, -2), keepdim=True).clamp_min(1e-8)
        written.append(_strip([maps], ["attention"], out / "attention.png"))
    return written


def loss_curves(metrics_path: Path, png: Path) -> Path:
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in Path(metrics_path).read_text().splitlines()]
    records = [r for r in records if M.TRAIN_TOTAL in r]
    names = [M.TRAIN_TOTAL] + sorted({k for r in records for k in r if k.startswith(M.TRAIN_TASK)})
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in names:
        points = [(r["step"], r[name]) for r in records if name in r]
        if points:
            ax.plot(*zip(*points, strict=True), label=name.removeprefix(M.TRAIN))
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_save_figure(png, fig)
    plt.close(fig)
    return png


def _strip(rows: list[Any], labels: list[str], png: Path) -> Path:
    """Rows of frames (T, 3, H, W) in [0, 1] as one image grid."""
    import matplotlib.pyplot as plt

    T = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), T, figsize=(T * 1.2, len(rows) * 1.3), squeeze=False)
    for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
        for t in range(T):
            ax = axes[i][t]
            ax.axis("off")
            if t < len(row):
                ax.imshow(row[t].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy())
        axes[i][0].set_title(label, fontsize=7, loc="left")
    fig.tight_layout()
    atomic_save_figure(png, fig)
    plt.close(fig)
    return png

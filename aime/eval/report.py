"""The evaluation report: eval.json, psnr_horizon.png, and the lines ``aime eval`` prints.

Metric names carry the ``eval/`` prefix; per-step curves are lists indexed by the predicted step
(index 0 is the first frame after the context, "one step" ahead).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from aime.eval.open_loop import METRICS, PREDICTORS, OpenLoopConfig
from aime.metrics import EVAL
from aime.storage import atomic_save_figure, atomic_write_json

EVAL_JSON = "eval.json"
PSNR_PLOT = "psnr_horizon.png"

PSNR_ONE_STEP = EVAL + "psnr_one_step"  # + "/model" or "/baseline"
PSNR_MEAN = EVAL + "psnr_mean"
SSIM_ONE_STEP = EVAL + "ssim_one_step"
SSIM_MEAN = EVAL + "ssim_mean"
MSE_MEAN = EVAL + "mse_mean"
NEG_ELBO = EVAL + "neg_elbo"


def build_report(
    means: dict[str, np.ndarray],
    *,
    windows: int,
    episodes: int,
    checkpoint: str,
    step: int,
    episodes_root: str,
    open_loop: OpenLoopConfig,
    split: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """The JSON-ready report from window-weighted means ("model/psnr": (H,), "loss/<term>": ())."""
    per_step = {p: {m: [float(v) for v in means[f"{p}/{m}"]] for m in METRICS} for p in PREDICTORS}
    headline: dict[str, float] = {}
    for p in PREDICTORS:
        curves = per_step[p]
        headline[f"{PSNR_ONE_STEP}/{p}"] = curves["psnr"][0]
        headline[f"{PSNR_MEAN}/{p}"] = float(np.mean(curves["psnr"]))
        headline[f"{SSIM_ONE_STEP}/{p}"] = curves["ssim"][0]
        headline[f"{SSIM_MEAN}/{p}"] = float(np.mean(curves["ssim"]))
        headline[f"{MSE_MEAN}/{p}"] = float(np.mean(curves["mse"]))
    losses = {k.removeprefix("loss/"): float(v) for k, v in sorted(means.items()) if k.startswith("loss/")}
    headline[NEG_ELBO] = losses.get("elbo/neg_elbo", math.nan)
    return {
        "checkpoint": checkpoint,
        "step": step,
        "episodes_root": episodes_root,
        **asdict(open_loop),
        "windows": windows,
        "episodes": episodes,
        "headline": headline,
        "per_step": per_step,
        "losses": losses,
        "split": split,
        "plot": PSNR_PLOT,
        "seconds": round(seconds, 2),
    }


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write eval.json and psnr_horizon.png into ``out_dir``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, plot_path = out_dir / EVAL_JSON, out_dir / PSNR_PLOT
    atomic_write_json(json_path, report)
    plot_psnr(report, plot_path)
    return json_path, plot_path


def plot_psnr(report: dict[str, Any], path: Path) -> None:
    """PSNR over the predicted horizon, model vs copy-last-frame baseline."""
    import matplotlib

    matplotlib.use("Agg")  # no display on workers or CI; must precede pyplot
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    steps = np.arange(1, report["horizon"] + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    for predictor, label, style in (("model", "world model", "o-"), ("baseline", "copy last frame", "s--")):
        ax.plot(steps, report["per_step"][predictor]["psnr"], style, label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("steps after the context")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(
        f"open-loop prediction, step {report['step']}: {report['windows']} windows, "
        f"context {report['context']}",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_save_figure(path, fig)
    plt.close(fig)


def summary_lines(report: dict[str, Any]) -> list[str]:
    h = report["headline"]
    return [
        f"{report['windows']} windows from {report['episodes']} held-out episodes, "
        f"context {report['context']}, horizon {report['horizon']}, checkpoint step {report['step']}",
        f"{'':16}{'model':>10}{'baseline':>10}",
        f"{'PSNR 1-step dB':16}{h[f'{PSNR_ONE_STEP}/model']:10.2f}{h[f'{PSNR_ONE_STEP}/baseline']:10.2f}",
        f"{'PSNR mean dB':16}{h[f'{PSNR_MEAN}/model']:10.2f}{h[f'{PSNR_MEAN}/baseline']:10.2f}",
        f"{'SSIM mean':16}{h[f'{SSIM_MEAN}/model']:10.3f}{h[f'{SSIM_MEAN}/baseline']:10.3f}",
        f"negative ELBO {h[NEG_ELBO]:.4g} nats/frame",
    ]

"""``aime lenses eval``: a pack's lenses scored on the test episodes, against the majority class.

pack + activations dataset (pack.json names it; --activations overrides)
    --test rows--> logits (M, N) --metrics.py--> per lens: P, R, F1, AUROC, baseline F1 / accuracy
    --> lens_eval.json: lenses, best activation per concept; f1_heatmap.png: concept x activation F1
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from aime.lenses.activations import Manifest, read_split
from aime.lenses.bank import LensBank
from aime.lenses.fit import predict
from aime.lenses.metrics import lens_scores, majority_baseline, per_lens
from aime.lenses.pack import LensPack
from aime.storage import atomic_write, atomic_write_text
from aime.storage.location import join

EVAL_JSON = "lens_eval.json"
HEATMAP = "f1_heatmap.png"


def score_split(
    bank: LensBank, directory: str | Path, split: str, manifest: Manifest
) -> list[dict[str, Any]]:
    """Per lens (bank order): its scores on ``split`` of the activations dataset, with the baseline."""
    concepts = sorted({s.concept for s in bank.specs})
    data = read_split(directory, split, bank.activations, concepts)
    device = next(bank.parameters()).device
    logits = predict(bank, data.to(device)).cpu().numpy()  # (M, N)
    labels = data.labels(data.label_columns(bank)).numpy().astype(bool)  # (M, N)
    scores = lens_scores(logits, labels)
    train = manifest.splits["train"]
    baseline = majority_baseline(np.array([train.positive_rate(s.concept) for s in bank.specs]), labels)
    out = []
    for i in range(len(bank.specs)):
        entry = per_lens(scores, i)
        entry["baseline_f1"], entry["baseline_accuracy"] = (
            per_lens(baseline, i)["f1"],
            per_lens(baseline, i)["accuracy"],
        )
        out.append(entry)
    return out


def evaluate_pack(
    pack_dir: str | Path, activations: str | Path | None = None, out: str | Path | None = None
) -> dict[str, Any]:
    """Score ``pack_dir`` on its test split; writes lens_eval.json and f1_heatmap.png (into the pack)."""
    pack = LensPack.load(pack_dir)
    directory = join(activations or pack.info["training"]["activations"])  # a path or a URI
    manifest = Manifest.read(directory)
    if manifest.config_hash != pack.config_hash:
        pack.check(manifest.config_hash, f"the activations dataset {directory}")
    scores = score_split(pack.bank, directory, "test", manifest)
    lenses = [{**spec.to_dict(), "test": s} for spec, s in zip(pack.bank.specs, scores, strict=True)]
    report = {
        "pack": join(pack_dir),
        "activations": directory,
        "config_hash": pack.config_hash,
        "test_rows": manifest.splits["test"].rows,
        "test_episodes": len(manifest.splits["test"].episodes),
        "lenses": lenses,
        "best_activation": best_activation(lenses),
    }
    target = out or pack_dir
    atomic_write_text(join(target, EVAL_JSON), json.dumps(report, indent=2) + "\n")
    plot_heatmap(lenses, join(target, HEATMAP))
    return report


def best_activation(lenses: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """For each concept, the activation whose lens has the highest test F1 (None: none scored)."""
    best: dict[str, dict[str, Any]] = {}
    for lens in lenses:
        f1 = lens["test"]["f1"]
        current = best.get(lens["concept"])
        if current is None or (f1 is not None and (current["f1"] is None or f1 > current["f1"])):
            best[lens["concept"]] = {
                "activation": lens["activation"],
                "f1": f1,
                "auroc": lens["test"]["auroc"],
            }
    return dict(sorted(best.items()))


def f1_grid(lenses: list[dict[str, Any]]) -> tuple[list[str], list[str], np.ndarray]:
    """(concepts, activations, F1 (C, A)); NaN where no lens or no score."""
    concepts = sorted({lens["concept"] for lens in lenses})
    activations = sorted({lens["activation"] for lens in lenses})
    grid = np.full((len(concepts), len(activations)), np.nan)
    for lens in lenses:
        f1 = lens["test"]["f1"]
        grid[concepts.index(lens["concept"]), activations.index(lens["activation"])] = (
            np.nan if f1 is None else f1
        )
    return concepts, activations, grid


def plot_heatmap(lenses: list[dict[str, Any]], path: str | Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")  # no display on workers or CI; must precede pyplot
    import matplotlib.pyplot as plt

    concepts, activations, grid = f1_grid(lenses)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(activations), 1.2 + 0.45 * len(concepts)))
    image = ax.imshow(np.ma.masked_invalid(grid), vmin=0, vmax=1, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(activations)), activations, rotation=30, ha="right")
    ax.set_yticks(range(len(concepts)), concepts)
    for (r, c), value in np.ndenumerate(grid):
        text = "-" if math.isnan(value) else f"{value:.2f}"
        ax.text(
            c, r, text, ha="center", va="center", color="white" if not value > 0.6 else "black", fontsize=8
        )
    ax.set_title("lens test F1 (concept x activation)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.05)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write(path, lambda stream: stream.write(buffer.getvalue()))


def summary_lines(report: dict[str, Any]) -> list[str]:
    rows, episodes = report["test_rows"], report["test_episodes"]
    lines = [f"{len(report['lenses'])} lenses on {rows} test rows ({episodes} episodes)"]
    lines.append(f"{'concept':<24} {'activation':<16} {'F1':>6} {'AUROC':>6} {'base F1':>8}")
    for lens in report["lenses"]:
        t = lens["test"]
        scores = f"{_fmt(t['f1']):>6} {_fmt(t['auroc']):>6} {_fmt(t['baseline_f1']):>8}"
        lines.append(f"{lens['concept']:<24} {lens['activation']:<16} {scores}")
    best = ", ".join(
        f"{c}: {b['activation']} ({_fmt(b['f1'])})" for c, b in report["best_activation"].items()
    )
    lines.append(f"best activation per concept: {best}")
    return lines


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"

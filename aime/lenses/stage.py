"""The lens stage of a run: extract -> train -> eval for a run's best checkpoint, in one call.

    run dir (a path or a shared-storage URI) --aime.checkpoints.resolve--> checkpoint
        --extract--> <run>/lenses/activations --train_lenses--> <run>/lenses/pack --evaluate_pack-->
        <run>/lenses/pack/lens_eval.json + f1_heatmap.png --> a summary (lenses, graduated, best per concept)

``aime run`` calls this after evaluation when ``lenses.enabled`` is set; the keyword arguments are
that config section's keys. Ray must be running (the caller's).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aime import checkpoints
from aime.lenses.evaluate import evaluate_pack
from aime.lenses.extract import ExtractOptions, extract
from aime.lenses.fit import FitConfig
from aime.lenses.train import TrainOptions, train_lenses
from aime.storage.mirror import shared_location

LENSES_DIR = "lenses"


def run_lens_stage(
    run_dir: str | Path,
    *,
    episodes: str | None = None,
    concepts: Sequence[str] = (),
    activations: Sequence[str] = (),
    workers: int = 2,
    cpus_per_worker: float = 0.5,
    epochs: int = 60,
    batch_size: int = 256,
) -> dict[str, Any]:
    """Lenses for the run's best checkpoint under ``<run_dir>/lenses``; returns the stage's summary."""
    checkpoint = checkpoints.resolve(run_dir)
    run = checkpoints.run_dir_of(checkpoint)
    out = f"{shared_location(run)}/{LENSES_DIR}"  # a run on shared storage: there, where every node writes
    manifest = extract(checkpoint, ExtractOptions(out=f"{out}/activations", episodes=episodes))
    options = TrainOptions(
        out=f"{out}/pack",
        concepts=concepts,
        activations=activations,
        fit=FitConfig(epochs=epochs, batch_size=batch_size),
        workers=workers,
        cpus_per_worker=cpus_per_worker,
    )
    info = train_lenses(f"{out}/activations", options)
    report = evaluate_pack(f"{out}/pack", f"{out}/activations")
    return {
        "checkpoint": shared_location(checkpoint),
        "pack": f"{out}/pack",
        "rows": {split: s.rows for split, s in manifest.splits.items()},
        "lenses": len(info["lenses"]),
        "graduated": [
            f"{lens['concept']}@{lens['activation']}" for lens in info["lenses"] if lens["graduated"]
        ],
        "skipped": [entry["concept"] for entry in info["skipped"]],
        "best_activation": report["best_activation"],
    }

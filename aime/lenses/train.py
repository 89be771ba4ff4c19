"""``aime lenses train`` on the driver: choose the lenses, run the Ray Train job, score, graduate, pack.

activations.json --concepts x activations, constant concepts skipped--> [LensSpec], positive rates
Ray Datasets (read_parquet train / validation) --TorchTrainer x N workers (worker.py)--> bank weights
bank --score_split: train, validation, test--> F1s --graduation (test F1 >= 0.85, gap <= 0.10)--> pack
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aime import checkpoints
from aime.lenses.activations import Manifest
from aime.lenses.bank import LensBank, LensSpec
from aime.lenses.evaluate import score_split
from aime.lenses.fit import FitConfig
from aime.lenses.metrics import GRADUATE_F1, GRADUATE_GAP, graduates
from aime.lenses.pack import LensPack, concept_definitions, now
from aime.lenses.worker import CHECKPOINT_RESULT, CHECKPOINT_WEIGHTS, train_lenses_worker
from aime.replay.schema import CONCEPT_PREFIX
from aime.storage import resolve_filesystem
from aime.storage.location import join, remove
from aime.storage.mirror import as_uri, is_uri

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainOptions:
    out: str  # the pack folder
    concepts: Sequence[str] = ()  # () : every concept of the dataset
    activations: Sequence[str] = ()  # () : every activation
    fit: FitConfig = field(default_factory=FitConfig)
    workers: int = 2  # Ray Train workers (data parallel)
    # A reservation, not a core. Ray Data's Parquet listing and read tasks need a free CPU while the
    # workers hold theirs, or they wait forever behind them (check_cpu_budget).
    cpus_per_worker: float = 0.5
    use_gpu: bool | None = None  # None: GPUs when the cluster has one per worker
    name: str | None = None  # the pack's name; None: the out folder's name


def choose_lenses(manifest: Manifest, options: TrainOptions) -> tuple[list[LensSpec], list[dict[str, Any]]]:
    """(the lenses to train, the concepts skipped with the reason)."""
    concepts = _pick("concept", list(options.concepts) or manifest.concepts, manifest.concepts)
    activations = _pick(
        "activation", list(options.activations) or sorted(manifest.activations), sorted(manifest.activations)
    )
    train = manifest.splits["train"]
    skipped, kept = [], []
    for concept in concepts:
        positives = train.positives.get(concept, 0)
        if positives in (0, train.rows):
            value = positives == train.rows
            skipped.append(
                {"concept": concept, "reason": f"constant ({value}) in all {train.rows} training rows"}
            )
        else:
            kept.append(concept)
    std = options.fit.standardise
    specs = [LensSpec(c, a, manifest.activations[a], std) for c in kept for a in activations]
    return specs, skipped


def train_lenses(activations_dir: str | Path, options: TrainOptions) -> dict[str, Any]:
    """Train the bank on ``activations_dir`` and write the pack to ``options.out``; returns pack.json."""
    started = time.monotonic()
    directory = join(activations_dir)  # a path or a shared-storage URI
    manifest = Manifest.read(directory)
    for split in ("train", "validation"):
        if manifest.splits[split].rows == 0:
            raise ValueError(f"{directory} has no {split} rows: extract from a store of 3 or more episodes")
    specs, skipped = choose_lenses(manifest, options)
    for entry in skipped:
        log.warning("lenses: concept %s skipped: %s", entry["concept"], entry["reason"])
    if not specs:
        raise ValueError(f"nothing to train: every chosen concept is constant ({skipped})")
    weights, fit_result = _fit(directory, manifest, specs, options)
    bank = LensBank(specs, dropout=options.fit.dropout)
    bank.load_state_dict(weights)
    scores = {
        split: score_split(bank, directory, split, manifest) for split in ("train", "validation", "test")
    }
    lenses = []
    for i, spec in enumerate(specs):
        metrics = {split: scores[split][i] for split in scores}
        train_f1, test_f1 = metrics["train"]["f1"], metrics["test"]["f1"]
        lenses.append(
            {
                **spec.to_dict(),
                "normalisation": "per-sample standardisation, no affine" if spec.standardise else "none",
                "graduated": graduates(train_f1, test_f1),
                "best_epoch": fit_result["best_epoch"][i],
                "metrics": metrics,
            }
        )
    info = {
        "name": options.name or _name(options.out),
        "world_model": {
            "checkpoint": manifest.checkpoint,
            "checkpoint_id": _checkpoint_id(manifest.checkpoint),
            "step": manifest.step,
            "config_hash": manifest.config_hash,
            "task": manifest.task,
        },
        "concepts": concept_definitions(manifest.task, sorted({s.concept for s in specs})),
        "lenses": lenses,
        "skipped": skipped,
        "graduation": {"test_f1_at_least": GRADUATE_F1, "train_test_gap_at_most": GRADUATE_GAP},
        "training": {
            **asdict(options.fit),
            "workers": options.workers,
            "activations": directory,
            "rows": {k: v.rows for k, v in manifest.splits.items()},
            "episodes": {k: len(v.episodes) for k, v in manifest.splits.items()},
            "epochs_run": fit_result["epochs_run"],
            "seconds": round(time.monotonic() - started, 2),
        },
        "created_at": now(),
    }
    LensPack(info, bank).save(options.out)
    return info


def _fit(
    directory: str, manifest: Manifest, specs: list[LensSpec], options: TrainOptions
) -> tuple[dict, dict]:
    """The Ray Train job; returns (the bank's state dict, fit_bank's result as a dict)."""
    import ray
    import ray.data
    from ray.train import DataConfig, LoggingConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from safetensors.torch import load_file

    activations = sorted({s.activation for s in specs})
    concepts = sorted({s.concept for s in specs})
    columns = [*activations, *(CONCEPT_PREFIX + c for c in concepts)]
    fs, path = resolve_filesystem(directory)
    datasets: dict[str, Any] = {
        split: ray.data.read_parquet(f"{path}/{split}", filesystem=fs).select_columns(columns)
        for split in ("train", "validation")
    }
    train = manifest.splits["train"]
    check_cpu_budget(options, ray.cluster_resources().get("CPU", 0))
    use_gpu = options.use_gpu
    if use_gpu is None:
        use_gpu = ray.cluster_resources().get("GPU", 0) >= options.workers
    # Ray Train's checkpoints beside the activations: on shared storage when they are (every node)
    storage = f"{path.rsplit('/', 1)[0]}/.{_name(options.out)}.ray_train"
    trainer = TorchTrainer(
        train_lenses_worker,
        train_loop_config={
            "specs": [s.to_dict() for s in specs],
            "fit": asdict(options.fit),
            "activations": activations,
            "concepts": concepts,
            "positive_fraction": [train.positive_rate(s.concept) for s in specs],
        },
        datasets=datasets,
        # Validation whole on every worker: each computes the same per-lens stop decisions.
        dataset_config=DataConfig(datasets_to_split=["train"]),
        scaling_config=ScalingConfig(
            num_workers=options.workers,
            use_gpu=use_gpu,
            resources_per_worker={"CPU": options.cpus_per_worker},
        ),
        run_config=RunConfig(  # type: ignore[call-arg]
            name="lenses",
            storage_path=storage,
            storage_filesystem=fs if is_uri(directory) else None,
            logging_config=LoggingConfig(log_level="WARNING"),  # the console is aime's summary
        ),
    )
    try:
        result = trainer.fit()
        if result.error is not None:
            raise result.error
        assert result.checkpoint is not None, "the lens job reported no checkpoint"
        with result.checkpoint.as_directory() as checkpoint:
            weights = load_file(str(Path(checkpoint) / CHECKPOINT_WEIGHTS))
            fit_result = json.loads((Path(checkpoint) / CHECKPOINT_RESULT).read_text())
    finally:
        remove(as_uri(directory, storage) if is_uri(directory) else storage)
    return weights, fit_result


def _name(location: str) -> str:
    """The last part of a path or URI."""
    return str(location).rstrip("/").rsplit("/", 1)[-1]


def check_cpu_budget(options: TrainOptions, cluster_cpus: float) -> None:
    """The workers' CPU reservations must leave one CPU for Ray Data to read the Parquet with."""
    held = options.workers * options.cpus_per_worker
    if held > cluster_cpus - 1 + 1e-9:
        raise ValueError(
            f"{options.workers} lens workers x {options.cpus_per_worker:g} CPUs = {held:g} leaves less than "
            f"the 1 CPU Ray Data needs to read activations on a cluster of {cluster_cpus:g}: "
            "use fewer workers or a smaller CPU reservation per worker"
        )


def _checkpoint_id(checkpoint: str) -> str:
    """<run id>/<step folder>: which model, readable without the path."""
    return f"{checkpoints.run_dir_of(checkpoint).name}/{Path(checkpoint).name}"


def _pick(kind: str, wanted: list[str], available: list[str]) -> list[str]:
    unknown = [w for w in wanted if w not in available]
    if unknown:
        raise ValueError(f"unknown {kind}(s) {', '.join(unknown)}; the dataset has: {', '.join(available)}")
    return wanted

"""Imported episodes feed training: windows from WindowSampler, one tiny world-model step on them."""

from __future__ import annotations

import numpy as np
import torch

from aime.config import Config, load_config
from aime.models.world_model import WorldModel
from aime.replay import WindowSampler
from aime.replay.importers import DmcvbImporter, WriteSettings, import_file
from aime.replay.importers.testing import write_dmcvb_subset


def test_one_training_step_on_imported_windows(tmp_path):
    cfg = load_config(Config, "tiny")
    source = tmp_path / "dmcvb"
    write_dmcvb_subset(source, files=1, episodes_per_file=2, steps=14, image_size=cfg.model.image_size)
    importer = DmcvbImporter(str(source))
    for file in importer.list_files():
        import_file(importer, file, WriteSettings(out=str(tmp_path / "replay")))

    sampler = WindowSampler(str(tmp_path / "replay"), seq_len=cfg.train.seq_len, seed=0)
    batch = sampler.sample(np.arange(cfg.train.batch_size))
    B, T = cfg.train.batch_size, cfg.train.seq_len
    assert batch["pixels"].shape == (B, T, 3, cfg.model.image_size, cfg.model.image_size)
    assert batch["action"].shape == (B, T, cfg.model.action_dim)
    # The store and the model share the RLDS convention: action[:, t] is taken after obs[:, t].
    inputs = {
        "obs": torch.from_numpy(batch["pixels"]),
        "action": torch.from_numpy(batch["action"]),
        "is_first": torch.from_numpy(batch["is_first"]),
    }
    torch.manual_seed(0)
    model = WorldModel(cfg.model)
    out = model(inputs["obs"], inputs["action"], inputs["is_first"])
    loss = model.losses(out, inputs)
    loss.total.backward()
    assert torch.isfinite(loss.total)
    grads = [p.grad for p in model.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_aime_train_runs_on_imported_episodes(tmp_path, ray_local):
    from aime.checkpoints import read_meta
    from aime.run.rundir import create_run_dir
    from aime.train.driver import train

    source = tmp_path / "dmcvb"
    write_dmcvb_subset(source, files=1, episodes_per_file=2, steps=14, image_size=32)
    importer = DmcvbImporter(str(source))
    for file in importer.list_files():
        import_file(importer, file, WriteSettings(out=str(tmp_path / "replay")))
    cfg = load_config(
        Config,
        "tiny",
        [
            f"results_dir={tmp_path / 'results'}",
            f"replay.root={tmp_path / 'replay'}",
            "train.steps=2",
            "train.num_workers=1",
            "model.optim.balancing.mode=sum",
        ],
    )
    cfg, run_dir = create_run_dir(cfg)
    summary = train(cfg, run_dir, progress=False)
    assert summary.steps == 2 and read_meta(summary.checkpoint)["step"] == 2
    assert torch.isfinite(torch.tensor(summary.metrics["train/total"]))

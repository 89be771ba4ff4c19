"""The ``gpu`` experiment preset (``aime run --config gpu``): it loads, passes the checks ``aime run``
makes before starting, fits one 16-core GPU node with its online actors, packs the online phase into
one rendering actor, and its world model (the small model at 64x64 with the preset's loss options)
trains a step on the CPU, the open-loop loss included."""

import torch

from aime.actors.online import online_actors
from aime.config import Config, load_config
from aime.models import WorldModel
from aime.models.balancing import GradientBalancer
from aime.train.driver import check_cpu_budget, check_train_config


def test_gpu_preset_fits_one_gpu_node_and_renders_online_in_one_actor():
    cfg = load_config(Config, "gpu", [])
    assert (cfg.env.image_size, cfg.model.image_size, cfg.train.batch_size) == (64, 64, 256)
    # The options the GPU quality sweep chose (README, "The main job on a GPU").
    assert (cfg.model.vae.output, cfg.model.optim.lr, cfg.model.vae.residual) == ("gaussian", 1e-3, True)
    assert cfg.collect.online_episodes > 0 and cfg.train.num_workers == 1
    check_train_config(cfg)
    check_cpu_budget(cfg, 16, online_collection=True)  # one H200 node: 16 cores
    online = online_actors(cfg.collect, on_gpu=True)
    assert (online.workers, online.envs_per_worker) == (1, 16)


def test_gpu_preset_model_trains_a_step_on_the_cpu():
    cfg = load_config(Config, "gpu", []).model
    torch.manual_seed(0)
    model = WorldModel(cfg)
    B, T, S = 2, cfg.loss.overshoot_context + cfg.loss.overshoot_steps, cfg.image_size
    batch = {
        "obs": torch.randint(0, 256, (B, T, 3, S, S), dtype=torch.uint8),
        "action": torch.rand(B, T, cfg.action_dim) * 2 - 1,
        "is_first": torch.arange(T).repeat(B, 1) == 0,
    }
    params = [p for p in model.parameters() if p.requires_grad]
    loss = model.losses(model(batch["obs"], batch["action"], batch["is_first"]), batch)
    result = GradientBalancer(cfg.optim.balancing)(loss.tasks, params)
    result.loss.backward()
    assert torch.isfinite(result.loss)
    assert torch.isfinite(loss.components["prediction/overshoot"])  # the open-loop loss is on
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in params)

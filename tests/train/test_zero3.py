"""DeepSpeed ZeRO-3 on the world model: training, consolidated weights, and the checkpoint round trip.

The single-process tests run the worker's own ``build_engine`` / ``train_microbatch`` in a gloo group of
one, with ``stage3_param_persistence_threshold=0``: by default ZeRO-3 keeps every parameter under 1e5
elements whole on every rank, which is all of the tiny model, so without it nothing would be
partitioned and the tests would prove little.
"""

from __future__ import annotations

import pytest
import torch
from engine_helpers import tiny_batch

from aime.checkpoints import WEIGHTS, load_world_model, read_meta
from aime.config import Config, load_config
from aime.train.checkpoint import consolidated_state_dict, load_engine_state, save_checkpoint
from aime.train.zero3 import evaluation_model

PARTITION_EVERYTHING = {"stage3_param_persistence_threshold": 0}
STEPS = 3


def _config(*overrides: str) -> Config:
    return load_config(
        Config,
        "tiny",
        [
            "model.optim.balancing.mode=sum",
            "train.zero_stage=3",
            "train.batch_size=2",
            "train.steps=10",
            "train.warmup_steps=1",
            *overrides,
        ],
    )


def _reconstruction(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eval-mode forward with a fixed seed (the prior still samples): a WorldModel or a DeepSpeed engine."""
    model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        out = model(batch["obs"], batch["action"], batch["is_first"]).reconstruction
    model.train()
    return out


def _weights(directory) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(directory / WEIGHTS))


def _train(engine, balancer, batch: dict[str, torch.Tensor], steps: int = STEPS) -> list[float]:
    """The worker's micro-step on one fixed batch; the per-step total losses."""
    from aime.train.worker import train_microbatch

    params = [p for p in engine.module.parameters() if p.requires_grad]
    torch.manual_seed(0)
    return [
        float(train_microbatch(engine, balancer, params, batch, bf16=False)[0].total) for _ in range(steps)
    ]


@pytest.fixture(scope="module")
def trained(gloo_group, tmp_path_factory):
    """A ZeRO-3 engine after STEPS steps, its checkpoint, the batch and the per-step losses."""
    from aime.models.balancing.balancer import GradientBalancer
    from aime.train.worker import build_engine

    cfg = _config()
    engine, _ = build_engine(cfg, torch.device("cpu"), 1, zero_overrides=PARTITION_EVERYTHING)
    assert engine.zero_optimization_stage() == 3
    initial = {k: v.clone() for k, v in consolidated_state_dict(engine).items()}
    balancer = GradientBalancer(cfg.model.optim.balancing)
    batch = tiny_batch()
    losses = _train(engine, balancer, batch)
    directory = tmp_path_factory.mktemp("zero3") / "a"
    save_checkpoint(engine, cfg, STEPS, directory, {"balancer": balancer.state_dict()})
    return {
        "cfg": cfg,
        "engine": engine,
        "balancer": balancer,
        "initial": initial,
        "batch": batch,
        "losses": losses,
        "dir": directory,
    }


def test_zero3_trains_and_the_consolidated_weights_are_the_trainers(trained):
    import deepspeed

    engine, batch = trained["engine"], trained["batch"]
    # ZeRO-3 really partitions: outside a forward every parameter is an empty placeholder.
    assert all(p.numel() == 0 and p.ds_numel > 0 for p in engine.module.parameters())
    losses = torch.tensor(trained["losses"])
    assert torch.isfinite(losses).all() and losses[-1] < losses[0], losses

    weights = _weights(trained["dir"])
    assert read_meta(trained["dir"])["step"] == STEPS
    moved = max((weights[k] - v.float()).abs().max().item() for k, v in trained["initial"].items())
    assert moved > 1e-3, "training changed the consolidated weights"

    # model.safetensors holds exactly the engine's parameters and buffers...
    with deepspeed.zero.GatheredParameters(list(engine.module.parameters())):
        gathered = {k: v.detach().float().clone() for k, v in engine.module.state_dict().items()}
    assert set(weights) == set(gathered)
    for name, value in gathered.items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=0, msg=name)

    # ...so a fresh WorldModel loaded from it computes what the trainer's model computes.
    model = load_world_model(trained["dir"])
    ours, theirs = _reconstruction(model, batch), _reconstruction(engine, batch)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)
    # What periodic evaluation scores under ZeRO-3: a plain copy with the same weights, on every rank.
    partitioned = [p.numel() == 0 for p in engine.module.parameters()]
    plain = evaluation_model(engine)
    assert plain is not engine.module and not hasattr(next(plain.parameters()), "ds_id")
    torch.testing.assert_close(_reconstruction(plain, batch), ours, rtol=0, atol=0)
    assert [p.numel() == 0 for p in engine.module.parameters()] == partitioned  # the engine is as it was

    untrained = _config()
    fresh = type(model)(untrained.model)
    fresh.load_state_dict(trained["initial"])
    assert (_reconstruction(fresh, batch) - theirs).abs().max() > 1e-4  # the comparison can tell


def test_zero3_takes_the_same_steps_as_zero2(trained):
    """Same init, data and seed: the losses after each update match ZeRO-2's, so the gradients do."""
    from aime.models.balancing.balancer import GradientBalancer
    from aime.train.worker import build_engine

    cfg = _config("train.zero_stage=2")
    engine, _ = build_engine(cfg, torch.device("cpu"), 1)
    assert engine.zero_optimization_stage() == 2
    losses = _train(engine, GradientBalancer(cfg.model.optim.balancing), trained["batch"])
    torch.testing.assert_close(torch.tensor(losses), torch.tensor(trained["losses"]), rtol=1e-5, atol=0)


def test_zero3_checkpoint_survives_load_then_save(trained, tmp_path):
    from aime.train.worker import build_engine, train_microbatch

    cfg, batch, first = trained["cfg"], trained["batch"], trained["dir"]
    engine, _ = build_engine(cfg, torch.device("cpu"), 1, zero_overrides=PARTITION_EVERYTHING)
    before = consolidated_state_dict(engine)
    saved = _weights(first)
    assert max((saved[k] - v.float()).abs().max().item() for k, v in before.items()) > 1e-3

    state = load_engine_state(engine, first)
    assert state["step"] == STEPS and state["balancer"] == trained["balancer"].state_dict()
    save_checkpoint(engine, cfg, STEPS, tmp_path / "b", {"balancer": state["balancer"]})
    again = _weights(tmp_path / "b")
    assert set(again) == set(saved)
    for name, value in saved.items():
        assert again[name].shape == value.shape and again[name].numel() > 0, name
        torch.testing.assert_close(again[name], value, rtol=0, atol=0, msg=name)
    torch.testing.assert_close(
        _reconstruction(load_world_model(tmp_path / "b"), batch),
        _reconstruction(engine, batch),
        rtol=0,
        atol=1e-5,
    )

    # The optimizer state came back too: one more step from either engine gives the same weights.
    from aime.models.balancing.balancer import GradientBalancer

    balancer = GradientBalancer(cfg.model.optim.balancing)
    for e in (trained["engine"], engine):
        torch.manual_seed(5)
        train_microbatch(
            e, balancer, [p for p in e.module.parameters() if p.requires_grad], batch, bf16=False
        )
    original, resumed = consolidated_state_dict(trained["engine"]), consolidated_state_dict(engine)
    for name, value in original.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.optim.balancing.mode=rgb"], "model.optim.balancing.mode=sum"),
        (["model.adversarial.enabled=true"], "model.adversarial.enabled=false"),
    ],
)
def test_zero3_refuses_rgb_and_the_adversary_naming_what_to_use(overrides, message):
    from aime.train.driver import check_train_config

    check_train_config(_config())  # sum balancing, no adversary: accepted
    with pytest.raises(ValueError, match="train.zero_stage<=2") as error:
        check_train_config(_config(*overrides))
    assert message in str(error.value)
    check_train_config(_config(*overrides, "train.zero_stage=2"))


def test_zero3_on_two_cpu_workers_trains_and_checkpoints(tmp_path, ray_local):
    """The whole path: driver -> 2 Ray Train workers -> ZeRO-3 -> checkpoint -> a fresh WorldModel."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    from aime.replay.synthetic import write_synthetic_episodes
    from aime.run.rundir import create_run_dir
    from aime.train.driver import train

    replay = tmp_path / "replay"
    write_synthetic_episodes(replay, 3, length=20, image_size=32, action_dim=6)
    cfg = _config(f"results_dir={tmp_path / 'results'}", f"replay.root={replay}", "train.steps=2")
    cfg, run_dir = create_run_dir(cfg)
    summary = train(cfg, run_dir, progress=False)
    assert summary.steps == 2 and summary.checkpoint
    assert torch.isfinite(torch.tensor(summary.metrics["train/total"]))
    directory = type(tmp_path)(summary.checkpoint)
    meta = read_meta(directory)
    assert meta["step"] == 2

    # model.safetensors (gathered by the workers at save time) equals the fp32 master weights DeepSpeed
    # rebuilds offline from both ranks' optimizer shards, and a fresh WorldModel loads it.
    weights = _weights(directory)
    masters = get_fp32_state_dict_from_zero_checkpoint(str(directory / "deepspeed"), tag=meta["tag"])
    assert set(masters) == set(weights)
    for name, value in masters.items():
        torch.testing.assert_close(weights[name], value.float(), rtol=0, atol=0, msg=name)
    model = load_world_model(directory)
    trainers = type(model)(cfg.model)
    trainers.load_state_dict(masters)
    assert max((v - trainers.state_dict()[k]).abs().max() for k, v in model.state_dict().items()) == 0
    torch.testing.assert_close(
        _reconstruction(model, tiny_batch()), _reconstruction(trainers, tiny_batch()), rtol=0, atol=0
    )

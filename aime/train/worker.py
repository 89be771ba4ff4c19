"""The Ray Train worker: one process per GPU (or CPU slot) training the world model with DeepSpeed.

DeepSpeed is imported here, inside the worker, never in the driver: importing it at module level
can crash a CPU-only Train controller. The model math (aime.models) receives its collectives as
injected functions; everything distributed lives in this file and ``distributed.py``.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.profiler import record_function

from aime import metrics as M
from aime.checkpoints import IncompleteCheckpointError, read_meta
from aime.config import Config, build
from aime.console import quiet_known_noise
from aime.replay import ReplayBuffer
from aime.replay.split import HeldOutSplit
from aime.replay.windows import model_inputs
from aime.run.seeding import derive_seed
from aime.storage import resolve_filesystem
from aime.train.checkpoint import load_engine_state, save_checkpoint
from aime.train.deepspeed_config import deepspeed_config, resolve_bf16, resolve_compile_rollout
from aime.train.distributed import all_reduce_mean, all_reduce_sum
from aime.train.periodic_eval import PeriodicEval
from aime.train.profiling import profiled_step
from aime.train.schedule import apply_peak_rates, build_optimizer
from aime.train.stages import prepare_model, stage_losses
from aime.train.startup import FirstBatchPrefetch, StartupClock
from aime.train.zero3 import check_zero3_supported, evaluation_model, expose_dataclass_outputs


def train_worker(loop_config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch

    from aime.models.balancing.balancer import GradientBalancer

    _quiet_report_logging()
    if loop_config.get("quiet", True):  # the driver's console filters (off under aime -v)
        quiet_known_noise()
    cfg = build(Config, loop_config["config"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()
    run_dir = Path(loop_config["run_dir"])
    profiled = cfg.train.profile_startup and rank == 0
    clock = StartupClock(run_dir / "profile" / f"startup_rank{rank}" if profiled else None)
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None and loop_config.get("resume_from"):
        filesystem, path = resolve_filesystem(loop_config["resume_from"])  # local, or shared storage
        checkpoint = ray.train.Checkpoint(path, filesystem=filesystem)
    step = read_meta(checkpoint.path, checkpoint.filesystem)["step"] if checkpoint is not None else 0
    # The stream depends only on the step it starts from: it is set up and its first batch fetched in a
    # thread while the engine builds.
    batches = FirstBatchPrefetch(
        lambda: iter(replay_batches(cfg, first_step=step, rank=rank, world_size=world))
    )
    engine, optimizer = build_engine(cfg, device, world, clock=clock)
    clock.mark("engine")
    _remove_stale_saves(cfg.run_id, rank)
    # The tokenizer stage has one task: nothing to balance.
    balancing = cfg.model.optim.balancing
    balancer = GradientBalancer(
        balancing if cfg.train.stage == "world_model" else replace(balancing, mode="sum"),
        reduce=all_reduce_mean,
    )
    if checkpoint is not None:
        _restore(engine, balancer, checkpoint, step)
        clock.mark("restore")
    periodic = PeriodicEval(cfg, loop_config.get("eval_plan", []), rank=rank, world_size=world, device=device)
    clock.mark("periodic_eval")  # its held-out windows
    batches.wait()
    clock.mark("first_batch")
    clock.overlapped["stream_ready"] = batches.ready_after or 0.0  # in its thread, from the worker's start
    loop = TrainLoop(cfg, engine, optimizer, balancer, periodic, device, rank, world, run_dir)
    loop.run(iter(batches), step, clock)


@dataclass
class TrainLoop:
    """The steps from where the worker starts to ``train.steps``: each step's micro-batches, the
    interval metrics every ``log_every`` steps, a checkpoint (with its held-out score) every
    ``checkpoint_every``, all reported to Ray Train."""

    cfg: Config
    engine: Any
    optimizer: torch.optim.Optimizer
    balancer: Any
    periodic: PeriodicEval
    device: torch.device
    rank: int
    world: int
    run_dir: Path

    def run(self, batches: Iterator[dict[str, Any]], step: int, clock: StartupClock) -> None:
        from aime.models.cudagraph_lookups import reordered_cudagraph_lookups

        t, cuda = self.cfg.train, self.device.type == "cuda"
        params = [p for p in self.engine.module.parameters() if p.requires_grad]
        bf16 = resolve_bf16(t, cuda)
        wait = busy = 0.0
        since_log = 0
        first_step = step + 1  # reported on its own: the driver times start-up to it (train.json)
        while step < t.steps:
            if since_log == 0 and cuda:  # interval edges only: queued work counted where it ran
                torch.cuda.synchronize(self.device)
            started = time.perf_counter()
            if t.inject_failure_at_step == step + 1 and self.rank == self.world - 1:
                _fail_once(self.run_dir, step + 1)
            capturing = cuda and step < first_step + 1  # warm-up, then CUDA graph trees' recording
            with reordered_cudagraph_lookups(capturing and t.cudagraph_reordered_lookups):
                losses, balanced, waited = self._step(batches, params, step, bf16)
            step += 1
            since_log += 1
            last = step == t.steps
            log_now = step % t.log_every == 0 or last or step == first_step
            if log_now and cuda:
                torch.cuda.synchronize(self.device)
            busy += time.perf_counter() - started
            wait += waited
            metrics: dict[str, float] = {"step": step}
            if step == first_step:
                clock.mark("first_step")  # compilation and CUDA-graph recording happen here
                clock.finish()
                metrics |= clock.metrics()
            if log_now:
                samples = since_log * t.grad_accum * t.batch_size * self.world
                metrics |= _metrics(losses, balanced.stats, self.optimizer, self.engine, wait, busy, samples)
                metrics[M.TRAIN_INTERVAL_END] = time.time()
                wait = busy = 0.0
                since_log = 0
            self._report(step, metrics, checkpoint=step % t.checkpoint_every == 0 or last)

    def _step(
        self, batches: Iterator[dict[str, Any]], params: list[torch.nn.Parameter], step: int, bf16: bool
    ) -> tuple[Any, Any, float]:
        """One optimizer step over ``grad_accum`` micro-batches: the last losses, the balancer's result
        and the seconds spent waiting for batches."""
        t = self.cfg.train
        torch.manual_seed(
            derive_seed(self.cfg.seed, "step", step, self.rank)
        )  # z samples etc.: resumable too
        waited = 0.0
        profiling = t.profile_step == step + 1 and self.rank == 0
        with profiled_step(profiling, self.run_dir / "profile", step + 1, self.device):
            for _ in range(t.grad_accum):
                fetched = time.perf_counter()
                with record_function("fetch"):
                    batch = next(batches)
                waited += time.perf_counter() - fetched
                model_batch = {
                    k: v.to(self.device, non_blocking=True) for k, v in model_inputs(batch).items()
                }
                losses, balanced = train_microbatch(
                    self.engine, self.balancer, params, model_batch, bf16=bf16, stage=t.stage
                )
        return losses, balanced, waited

    def _report(self, step: int, metrics: dict[str, float], *, checkpoint: bool) -> None:
        """``metrics`` to Ray Train; at a checkpoint step with the checkpoint and its held-out score."""
        import ray.train

        if not checkpoint:
            if len(metrics) > 1:
                ray.train.report(metrics)
            return
        scores: dict[str, float] = {}
        if self.periodic.enabled:  # every checkpoint carries its score (CheckpointConfig keeps the best)
            scores = self.periodic(evaluation_model(self.engine), all_reduce_sum)  # ZeRO-3: a plain copy
        metrics |= scores
        directory = _stage_save(self.cfg.run_id, self.rank)
        save_checkpoint(
            self.engine, self.cfg, step, directory, {"balancer": self.balancer.state_dict()}, scores
        )
        ray.train.report(
            metrics,
            checkpoint=ray.train.Checkpoint.from_directory(str(directory)),
            checkpoint_dir_name=f"step{step:08d}",
            delete_local_checkpoint_after_upload=True,  # else every save stays behind in /tmp
        )


def build_engine(
    cfg: Config,
    device: torch.device,
    world_size: int,
    *,
    zero_overrides: dict[str, Any] | None = None,
    clock: StartupClock | None = None,
    built_on_device: bool = False,
) -> tuple[Any, torch.optim.Optimizer]:
    """The WorldModel, AdamW over its parameter groups and the lr schedule, in a DeepSpeed engine.

    Collective: every rank calls it (``torch.distributed`` already initialised). ``zero_overrides``
    are merged into the config's ``zero_optimization`` (tests use it to make ZeRO-3 partition even the
    tiny model's parameters). ``clock`` gets marks as the start-up phases end: "imports" (DeepSpeed and
    the model's modules), "device" (its first use: on a GPU, the CUDA context), "model" (built on the
    device), "compile_setup"; the caller marks the engine. ``built_on_device`` makes the model's
    tensors on ``device`` from the start instead of on the host first (``benchmarks/zero_capacity.py``:
    eight ranks of a model of billions of parameters would fill the host's memory). Returns the engine
    and the torch optimizer (its groups carry the lr).
    """
    import deepspeed

    from aime.models.world_model import WorldModel

    def mark(phase: str) -> None:
        if clock is not None:
            clock.mark(phase)

    mark("imports")
    torch.empty(0, device=device)  # the device's first use (a GPU's context) on its own clock
    mark("device")
    t = cfg.train
    if t.zero_stage == 3:
        check_zero3_supported(cfg.model)
    torch.manual_seed(derive_seed(cfg.seed, "model"))  # the same initial weights on every rank
    with device if built_on_device else contextlib.nullcontext():
        model = WorldModel(cfg.model, reduce=all_reduce_mean).to(device)
    prepare_model(model, cfg)  # the stage's frozen components and loaded tokenizer, before the optimizer
    mark("model")
    model.compile_rollout(resolve_compile_rollout(t, device.type == "cuda"))  # type: ignore[arg-type]
    mark("compile_setup")
    optimizer, schedule = build_optimizer(model, cfg)
    bf16 = resolve_bf16(t, device.type == "cuda")
    config = deepspeed_config(t, grad_clip=cfg.model.optim.grad_clip, world_size=world_size, bf16=bf16)
    config["zero_optimization"] |= zero_overrides or {}
    engine, _, _, _ = deepspeed.initialize(
        model=model, optimizer=optimizer, lr_scheduler=schedule, config=config
    )
    if engine.zero_optimization_stage() == 3:
        expose_dataclass_outputs(engine.module)  # see zero3.py: why ZeRO-3 needs it
    return engine, optimizer


def train_microbatch(
    engine: Any,
    balancer: Any,
    params: list[torch.nn.Parameter],
    batch: dict[str, torch.Tensor],
    *,
    bf16: bool,
    stage: str = "world_model",
) -> tuple[Any, Any]:
    """Forward, the stage's losses, balancing, ``engine.backward`` and ``engine.step`` on one micro-batch."""
    device = batch["obs"].device
    with record_function("forward"), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        losses = stage_losses(engine.module, engine, batch, stage)
    with record_function("balance"):  # RGB's per-task backward passes run here
        balanced = balancer(losses.tasks, params)
    with record_function("backward"):
        engine.backward(balanced.loss)
    with record_function("optimizer_step"):
        engine.step()
    return losses, balanced


def _stage_save(run_id: str | None, rank: int) -> Path:
    """A fresh local folder for one save of this rank; Ray Train deletes it once persisted."""
    return Path(tempfile.mkdtemp(prefix=f"aime-ckpt-{run_id}-{rank}-"))


def _restore(engine: Any, balancer: Any, checkpoint: Any, step: int) -> None:
    """Engine, optimizer, schedule and balancer from a Ray Train checkpoint saved at ``step``."""
    peaks = list(engine.lr_scheduler.base_lrs)  # this run's config, before the checkpoint's replace them
    with checkpoint.as_directory() as directory:
        state = load_engine_state(engine, Path(directory))
    apply_peak_rates(engine.lr_scheduler, peaks)
    if int(state["step"]) != step:
        raise IncompleteCheckpointError(
            f"{checkpoint.path}: meta.json says step {step}, the DeepSpeed state step {state['step']}"
        )
    if state.get("balancer") is not None:
        balancer.load_state_dict(state["balancer"])


def _remove_stale_saves(run_id: str | None, rank: int) -> None:
    """Saves of this run and rank that a killed worker left in the temp folder (a restarted or resumed
    worker starts with none in flight)."""
    import shutil

    for stale in Path(tempfile.gettempdir()).glob(f"aime-ckpt-{run_id}-{rank}-*"):
        shutil.rmtree(stale, ignore_errors=True)


def replay_batches(cfg: Config, *, first_step: int, rank: int, world_size: int) -> Iterator[dict[str, Any]]:
    """This rank's torch batches from ``first_step`` to the end of training, in a fixed order.

    Each rank streams its own Ray Data pipeline of window ids (``batch_window_ids``) rather than a
    dynamic split of a shared one, so the windows of (rank, step) never depend on timing: a resumed
    or restarted worker sees exactly the batches an uninterrupted run would have.
    """
    t = cfg.train
    buffer = ReplayBuffer(cfg.replay, t, seed=derive_seed(cfg.seed, "replay"))
    held_out = HeldOutSplit.of(cfg)  # the split aime eval uses
    # Inside a Ray Train worker the batches arrive on its device (device="auto"), moved by Ray's
    # prefetch thread; pinned host memory makes that copy asynchronous (from pageable memory CUDA
    # first waits for the stream's queued work).
    return buffer.stream(
        num_batches=(t.steps - first_step) * t.grad_accum,
        first_batch=first_step * t.grad_accum,
        episode_filter=held_out.training_files,
        rank=rank,
        world_size=world_size,
        pin_memory=torch.cuda.is_available(),
    )


def _quiet_report_logging() -> None:
    """Ray Train logs every ``report`` call, metrics dict included, at INFO from a logger named by its
    file path (so ``LoggingConfig`` does not reach it); aime already writes each report to
    metrics.jsonl and the progress bar."""
    import logging

    try:
        from ray.train.v2._internal.execution import context
    except ImportError:  # another Ray layout: its logging is left alone
        return
    logging.getLogger(context.__file__).setLevel(logging.WARNING)


class InjectedFailure(RuntimeError):
    pass


def _fail_once(run_dir: Path, step: int) -> None:
    marker = run_dir / ".injected-failure"
    if marker.exists():
        return
    marker.write_text(f"step {step}\n")
    raise InjectedFailure(f"injected failure at step {step} (train.inject_failure_at_step)")


def _metrics(
    losses: Any,
    stats: dict[str, torch.Tensor],
    optimizer: Any,
    engine: Any,
    wait: float,
    busy: float,
    samples: int,
) -> dict[str, float]:
    def value(x: Any) -> float:  # graph tensors: float() of one that requires grad warns every time
        return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)

    out = {M.TRAIN_TOTAL: value(losses.total)}
    out |= {M.TRAIN_TASK + k: value(v) for k, v in losses.tasks.items()}
    out |= {M.TRAIN + k: value(v) for k, v in losses.components.items()}
    out |= {M.TRAIN + k: value(v) for k, v in losses.metrics.items()}
    out |= {M.TRAIN + k: value(v) for k, v in stats.items()}
    out |= {M.TRAIN_LR + str(g.get("name", i)): g["lr"] for i, g in enumerate(optimizer.param_groups)}
    grad_norm = engine.get_global_grad_norm()
    if grad_norm is not None:
        out[M.TRAIN_GRAD_NORM] = float(grad_norm)
    out[M.TRAIN_DATA_WAIT] = wait / busy if busy else 0.0
    out[M.TRAIN_SAMPLES_PER_SECOND] = samples / busy if busy else 0.0
    if torch.cuda.is_available():
        out[M.TRAIN_GPU_MEMORY_GB] = torch.cuda.max_memory_allocated() / 2**30
    return out

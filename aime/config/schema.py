"""The typed configuration of an aime run: one frozen dataclass per component.

Field comments are the documentation of every key; ``cluster/configs/default.yaml`` holds the
defaults a run starts from. Components receive only their own slice (``cfg.env``, ``cfg.replay``...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from aime.models.config import ModelConfig


@dataclass(frozen=True)
class EnvConfig:
    task: str = "cheetah-run"  # dm_control suite task as "domain-task"
    image_size: int = 64  # square pixel observations, image_size x image_size x 3
    action_repeat: int = 2  # physics control steps per agent step; rewards are summed
    camera: int | str | None = None  # camera id or name; None: the domain's usual camera
    max_episode_steps: int | None = None  # agent steps; None: the task's own limit / action_repeat
    render_lite: bool = True  # shadows, reflections and skybox off: 3-5x cheaper frames on the CPU
    egl_device: Literal["auto", "cpu"] | int = "auto"  # see docs/RENDERING.md


@dataclass(frozen=True)
class CollectConfig:
    episodes: int = 20  # complete episodes to write
    # aime run only: further episodes collected while training samples the store (online mode)
    online_episodes: int = 0
    workers: int = 2  # rollout actors
    # environments each actor steps in lockstep; auto: 16 where EGL renders on an NVIDIA GPU, else 1
    # (aime/actors/lockstep_size.py)
    envs_per_worker: Literal["auto"] | int = "auto"
    policy: Literal["random"] = "random"
    cpus_per_worker: float = 1.0
    max_restarts: int = 3  # per actor, before the collection gives up on it
    max_task_retries: int = 3
    max_attempts_per_episode: int = 5  # a slot that fails this often aborts the collection
    # Custom Ray resources each rollout actor requests, e.g. {rollout: 1}: on a cluster whose rollout
    # nodes declare that resource (cluster/aws.yaml, cluster/kuberay/) the actors land only there.
    resources: dict[str, float] = field(default_factory=dict)
    # Warn (once per actor) when a rollout actor has waited this long for Ray to place it: the
    # collection would otherwise wait silently for resources something else holds. <= 0: never.
    placement_warning_s: float = 60.0


@dataclass(frozen=True)
class ReplayConfig:
    root: str | None = None  # local path or pyarrow URI (s3://...); None: <run_dir>/replay
    capacity_steps: int = 1_000_000  # oldest episodes are evicted beyond this many steps
    chunk_steps: int | None = None  # split long episodes into files of this many steps
    row_group_steps: int = 64  # Parquet row group size: the unit a window read decodes
    compression: Literal["zstd", "lz4", "snappy", "none"] = "zstd"
    compression_level: int | None = None
    refresh_seconds: float = 5.0  # how often samplers look for new episodes
    # A node-local directory where the training stream's samplers keep episodes decoded (uncompressed,
    # memory-mapped): a window then copies its T frames instead of decoding the row groups it overlaps.
    # Costs disk (about 12 KB per 64x64 frame) and one whole-episode decode per episode per node.
    # None: off. Oldest entries leave past frame_cache_gb (aime/replay/frame_cache.py).
    frame_cache: str | None = None
    frame_cache_gb: float = 16.0
    # Who copies a window's rows for the training stream: the sampler actors, into the stream
    # ("samplers"), or the trainer, out of the frame cache, from window plans the actors send and whose
    # episodes they decode into it ("reader": needs frame_cache on the trainer's node; gather.py).
    gather: Literal["samplers", "reader"] = "samplers"

    def __post_init__(self) -> None:
        if self.gather == "reader" and not self.frame_cache:
            raise ValueError("replay.gather=reader reads the frame cache: set replay.frame_cache")


@dataclass(frozen=True)
class RayConfig:
    address: str | None = None  # None: $RAY_ADDRESS if set, else start a local Ray
    num_cpus: int | None = None  # local Ray only; None: all cores
    include_dashboard: bool = True  # local Ray only; Ray Train's controller polls its state API
    object_store_memory_mb: int | None = None  # local Ray only
    # Local Ray only: the prestarted workers import the rollout actor's modules (aime's, dm_control's
    # suite) while the command sets up, so collection's actors start without them (aime/run/ray_init.py).
    preload_rollout_modules: bool = True
    # Local paths (results_dir, replay.root) name a folder every node mounts (NFS, ...): without it a
    # cluster of several nodes refuses them (each node would write its own disk).
    shared_paths: bool = False


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 16  # B: sequences per optimizer step per worker (before accumulation)
    seq_len: int = 32  # T: steps per sequence
    sampler_workers: int = 1  # Ray Data actors sampling windows, per Ray Train worker (each streams its own)
    sampler_cpus: float = 1.0  # CPUs reserved per sampler actor
    windows_per_read: int = 64  # windows each sampler call returns; amortises per-call overhead
    # window plans each sampler call returns with replay.gather=reader: a plan is bytes, not pixels,
    # so one block serves many batches and Ray Data's per-block work is paid once for them
    plans_per_read: int = 512
    prefetch_batches: int = 2
    steps: int = 1000  # optimizer steps
    # world_model: the whole model; tokenizer: pre-train perception.tokenizer alone (aime/train/stages.py)
    stage: Literal["world_model", "tokenizer"] = "world_model"
    tokenizer_checkpoint: str | None = None  # a tokenizer-stage checkpoint or run dir: loaded and frozen
    eval_fraction: float = 0.1  # share of episodes held out of training for aime eval (by episode id)
    eval_windows: int = 32  # held-out windows scored open loop at every checkpoint; 0 turns it off
    num_workers: int = 2  # Ray Train workers: one per GPU on a GPU cluster, CPU processes otherwise
    cpus_per_worker: float = 1.0
    use_gpu: Literal["auto"] | bool = "auto"  # auto: GPUs when the cluster has them
    # GPUs each worker reserves when it uses one: a fraction (0.25) lets several trials of a sweep
    # share one GPU, a whole number gives a worker several (its model still runs on one).
    gpus_per_worker: float = 1.0
    zero_stage: int = 2  # DeepSpeed ZeRO stage, 0-3
    bf16: Literal["auto"] | bool = "auto"  # auto: bf16 on GPUs, fp32 on CPUs
    # torch.compile mode of the model's per-frame rollout step (its launch-bound loop); auto:
    # reduce-overhead (CUDA graphs) on GPUs under ZeRO 0-2, eager on CPUs and under ZeRO-3
    compile_rollout: Literal["auto", "none", "default", "reduce-overhead", "max-autotune"] = "auto"
    # Under CUDA graphs, a run's second step records ~100 graphs; CUDA graph trees' lookups of each
    # tensor among the outputs recorded before it, reordered to compare data pointers first (the same
    # answers; aime/models/cudagraph_lookups.py); false runs torch's own
    cudagraph_reordered_lookups: bool = True
    grad_accum: int = 1  # micro-batches per optimizer step
    warmup_steps: int = 100  # linear warm-up from 0 to the model's lr
    min_lr_ratio: float = 0.1  # the cosine decays to lr * min_lr_ratio at `steps`
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    log_every: int = 10  # steps between metric records
    wandb: bool = False  # also log to Weights & Biases: offline (<run_dir>/wandb) unless WANDB_API_KEY is set
    checkpoint_every: int = 500  # steps between checkpoints (and one at the end)
    keep_checkpoints: int = 2  # kept: the best by periodic eval (else the newest); the newest is kept too
    max_failures: int = 2  # worker-group failures survived by resuming from the last checkpoint
    # Profile this optimizer step on rank 0 with torch.profiler: summary + timeline in <run_dir>/profile/
    profile_step: int | None = None
    # cProfile of rank 0's start-up, from the worker's start to its first step's end (what the start-up
    # phases are made of): <run_dir>/profile/startup_rank0.{pstats,txt}
    profile_startup: bool = False
    # Fault-injection for tests and drills: the last worker raises once on reaching this step.
    inject_failure_at_step: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.zero_stage <= 3:
            raise ValueError(f"zero_stage must be 0, 1, 2 or 3, got {self.zero_stage}")
        if self.eval_windows < 0:
            raise ValueError(f"eval_windows must be >= 0, got {self.eval_windows}")
        for name in ("batch_size", "seq_len", "steps", "num_workers", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.compile_rollout not in ("auto", "none") and self.zero_stage == 3:
            raise ValueError(
                f"compile_rollout={self.compile_rollout} needs zero_stage 0-2: ZeRO-3 gathers parameters per "
                "submodule at run time, which a compiled graph cannot see; use compile_rollout=none or auto"
            )
        if (
            self.compile_rollout in ("reduce-overhead", "max-autotune")
            and self.grad_accum > 1
            and self.zero_stage < 2
        ):
            raise ValueError(
                f"compile_rollout={self.compile_rollout} (CUDA graphs) with grad_accum > 1 needs "
                "zero_stage 2: below it .grad accumulates in memory the next graph replay reuses; "
                "use compile_rollout=default"
            )
        if self.profile_step is not None and not 1 <= self.profile_step <= self.steps:
            steps = f"1..{self.steps}"
            raise ValueError(f"profile_step must be one of the run's steps, {steps}: {self.profile_step}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")


@dataclass(frozen=True)
class LensesConfig:
    """The optional lens stage of ``aime run`` (after evaluation): aime.lenses.stage.run_lens_stage."""

    enabled: bool = False
    concepts: tuple[str, ...] = ()  # concepts to read; () = every concept the episodes carry
    activations: tuple[str, ...] = ()  # WorldModel.encode outputs; () = all of them
    workers: int = 2  # Ray Train workers training the bank
    cpus_per_worker: float = 0.5
    epochs: int = 60
    batch_size: int = 256


@dataclass(frozen=True)
class Config:
    seed: int = 0  # drives Python, NumPy, torch and every actor's environment seed
    run_id: str | None = None  # None: <UTC time>-<task>-<random suffix>
    results_dir: str = "results"
    log_every_seconds: float = 1.0
    env: EnvConfig = field(default_factory=EnvConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    replay: ReplayConfig = field(default_factory=ReplayConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    lenses: LensesConfig = field(default_factory=LensesConfig)

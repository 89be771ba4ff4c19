"""A trainer's replay stream from its set-up to its first batch, commit against commit (prints JSON).

    python benchmarks/stream_startup.py [--refs OLD NEW] [--repeats 3] [--episodes 128] \
        [--store DIR] [--out stream.json] [-- key=value ...]

What a training worker of ``aime train --config gpu`` does in its first-batch thread
(aime/train/startup.py, ``startup/overlapped/stream_ready``), alone: ``ReplayBuffer.stream`` for rank
0 of 1 over the preset's whole run (``train.steps`` batches of ``train.batch_size`` windows: 800 of
256 by default, 3,200 blocks of 64 window ids), then its first batch. The store is synthetic (64x64,
501 steps an episode, ``--episodes`` of them), written once to ``--store`` (default: a folder under
the system temp dir, kept for the next call). Each run is a fresh process from the ref's checkout
(benchmarks/refs.py) with its own local Ray (``ray.num_cpus=8`` unless overridden); the refs alternate
``--repeats`` times after one untimed run each. Figures per run: ``stream_seconds`` (the stream built:
Ray Data's plan and its id blocks), ``first_batch_seconds`` (from the start of building to the first
batch in hand) and ``process_seconds`` (the whole process: Python, aime's imports, Ray's start).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import refs  # noqa: E402

DEFAULT_OVERRIDES = ["ray.num_cpus=8"]


def measure(store: str, overrides: list[str]) -> dict[str, float]:
    """In this process (the aime first on PYTHONPATH): build the stream and take its first batch."""
    from aime.config import Config, load_config
    from aime.replay.buffer import ReplayBuffer
    from aime.run.ray_init import init_ray

    cfg = load_config(Config, "gpu", [f"replay.root={store}", *overrides])
    init_ray(cfg.ray)
    started = time.perf_counter()
    stream = ReplayBuffer(cfg.replay, cfg.train, seed=cfg.seed).stream(cfg.train.steps, rank=0, world_size=1)
    built = time.perf_counter()
    batch = next(iter(stream))
    arrived = time.perf_counter()
    expected = (cfg.train.batch_size, cfg.train.seq_len, 3, cfg.env.image_size, cfg.env.image_size)
    if tuple(batch["pixels"].shape) != expected:
        raise RuntimeError(f"first batch's pixels {tuple(batch['pixels'].shape)}, expected {expected}")
    return {"stream_seconds": round(built - started, 2), "first_batch_seconds": round(arrived - started, 2)}


def one_run(source: Path, store: str, overrides: list[str]) -> dict[str, float]:
    """``measure`` in a fresh process from ``source``, and that process's wall seconds."""
    command = [sys.executable, __file__, "--one", "--store", store, *overrides]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=source, env=refs.environment(source), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    (figures, *_) = [line for line in reversed(done.stdout.splitlines()) if line.startswith("{")]
    return {**json.loads(figures), "process_seconds": round(seconds, 2)}


def synthetic_store(store: Path, episodes: int) -> str:
    """``episodes`` synthetic 64x64 episodes in ``store``, written unless already there."""
    from aime.replay.synthetic import write_synthetic_episodes

    if len(list(store.glob("*.parquet"))) != episodes:
        write_synthetic_episodes(store, episodes)
    return str(store)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--refs", nargs="+", default=["HEAD", refs.WORKTREE])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--episodes", type=int, default=128)
    parser.add_argument("--store", help="the synthetic store's folder")
    parser.add_argument("--out")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="key=value for every run")
    args = parser.parse_args()
    overrides = args.overrides or DEFAULT_OVERRIDES
    if args.one:
        print(json.dumps(measure(args.store, overrides)))
        return
    default_store = Path(tempfile.gettempdir()) / f"aime-stream-startup-{args.episodes}"
    store = synthetic_store(Path(args.store) if args.store else default_store, args.episodes)
    runs = refs.alternate(args.refs, lambda source, _: one_run(source, store, overrides), args.repeats)
    result = {
        "benchmark": "stream_startup",
        "refs": {ref: refs.describe(ref) for ref in args.refs},
        "store": {"episodes": args.episodes, "image_size": 64, "steps_per_episode": 501},
        "overrides": overrides,
        "repeats": args.repeats,
        "runs": runs,
        **refs.summarise(runs),
    }
    refs.emit(result, args.out)


if __name__ == "__main__":
    main()

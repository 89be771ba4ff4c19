"""Synthetic episodes in the replay schema, for tests and benchmarks: realistic sizes, no simulator.

A frame looks like a dm_control observation in the ways that matter to storage: a black sky, a
floor band with a soft gradient and a little sensor-like noise, and a few coloured rectangles that
move smoothly. Parquet's zstd compresses these frames somewhat less than rendered cheetah-run
frames (``benchmarks/pixel_codec.py`` prints both ratios), so stores in ``benchmarks/replay.py``
are a little larger, and slower to read, than real ones: a conservative stand-in. Episode
``index`` is drawn from ``default_rng([seed, index])`` alone, so several processes can write parts
of one store and get the same files as one process would.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from aime.replay.episode import EpisodeArrays, episode_table
from aime.replay.schema import EpisodeMetadata
from aime.replay.store import ReplayStore

FLOOR_COLOUR = np.array([30.0, 55.0, 85.0], np.float32)  # the dim blue of dm_control's floor
FLOOR_START = 0.7  # fraction of the height where the floor band begins
NOISE_LEVELS = 3  # floor pixels get +0..2: zstd compresses these 4.97x, cheetah-run's 7.26x (pixel_codec.py)
BOXES = 3


def synthetic_frames(rng: np.random.Generator, length: int, image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``length`` frames (N, 3, H, W) uint8, built for the whole episode at once, and the boxes'
    centres (N, K, 2) as (row, column), from which the concepts are read."""
    N, H, W = length, image_size, image_size
    rows, cols = np.arange(H), np.arange(W)

    floor_top = int(H * FLOOR_START)
    shade = np.ones(H, np.float32)
    shade[:floor_top] = 0.0
    shade[floor_top:] = np.linspace(1.0, 0.6, H - floor_top)
    background = FLOOR_COLOUR[:, None, None] * shade[None, :, None] * np.ones(W, np.float32)  # (3, H, W)
    frames = np.broadcast_to(background.astype(np.uint8), (N, 3, H, W)).copy()
    noise = rng.integers(0, NOISE_LEVELS, (N, 3, H - floor_top, W), dtype=np.uint8)
    frames[:, :, floor_top:] += noise

    # Each box follows its own slow sinusoid, so consecutive frames differ by a pixel or two.
    half = np.maximum(1, rng.uniform(0.05, 0.15, (BOXES, 2)) * H).astype(np.int64)  # (K, 2) half h, w
    base = rng.uniform(0.25, 0.75, (BOXES, 2)) * H
    amplitude = rng.uniform(0.05, 0.25, (BOXES, 2)) * H
    period = rng.uniform(40, 200, (BOXES, 2))
    phase = rng.uniform(0, 2 * np.pi, (BOXES, 2))
    t = np.arange(N)[:, None, None]
    centre = (base + amplitude * np.sin(2 * np.pi * t / period + phase)).astype(np.int64)  # (N, K, 2)
    lo, hi = centre - half, centre + half + 1
    in_rows = (rows >= lo[..., 0, None]) & (rows < hi[..., 0, None])  # (N, K, H)
    in_cols = (cols >= lo[..., 1, None]) & (cols < hi[..., 1, None])  # (N, K, W)
    colour = rng.integers(90, 256, (BOXES, 3)).astype(np.uint8)
    for k in range(BOXES):
        box = in_rows[:, k, :, None] & in_cols[:, k, None, :]  # (N, H, W)
        frames = np.where(box[:, None], colour[k][None, :, None, None], frames)
    return frames.astype(np.uint8, copy=False), centre


def synthetic_episode(
    index: int,
    *,
    length: int,
    image_size: int,
    action_dim: int,
    state_dim: int,
    num_concepts: int,
    seed: int,
) -> EpisodeArrays:
    """Episode ``index`` of ``length`` rows, in the RLDS alignment: the last row's action is zero."""
    assert length >= 1 and image_size >= 4, (length, image_size)
    rng = np.random.default_rng([seed, index])
    pixels, centre = synthetic_frames(rng, length, image_size)
    action = rng.uniform(-1, 1, (length, action_dim)).astype(np.float32)
    reward = rng.uniform(0, 1, length).astype(np.float32)
    action[-1], reward[-1] = 0.0, 0.0
    # Concept k is read off the frames (box k % K above or left of its average place), so a probe
    # could learn it, and it holds about half the time.
    box, axis = np.arange(num_concepts) % BOXES, (np.arange(num_concepts) // BOXES + 1) % 2
    position = centre[:, box, axis].astype(np.float32)  # (N, num_concepts)
    concepts = position < position.mean(axis=0)
    is_first, is_last = np.zeros(length, bool), np.zeros(length, bool)
    is_first[0], is_last[-1] = True, True
    return EpisodeArrays(
        pixels=pixels,
        action=action,
        reward=reward,
        discount=np.ones(length, np.float32),  # time-limit ends, as dm_control's locomotion tasks
        is_first=is_first,
        is_last=is_last,
        is_terminal=np.zeros(length, bool),
        state=rng.standard_normal((length, state_dim)).astype(np.float32),
        concepts=concepts,
        policy_version=np.zeros(length, np.int32),
        step=np.arange(length, dtype=np.int32),
    )


def write_synthetic_episodes(
    root: str | Path,
    count: int,
    *,
    length: int = 501,
    image_size: int = 64,
    action_dim: int = 6,
    state_dim: int = 17,
    concepts: Sequence[str] = ("a", "b", "c", "d"),
    start_index: int = 0,
    seed: int = 0,
    row_group_steps: int = 64,
    compression: str = "zstd",
) -> list[str]:
    """Write episodes ``start_index .. start_index + count - 1`` as ``synthetic-{index:06d}.parquet``.

    Names sort by index, so the store's age order is index order. Returns the paths written.
    """
    store = ReplayStore(root)
    paths = []
    for index in range(start_index, start_index + count):
        name = f"synthetic-{index:06d}"
        arrays = synthetic_episode(
            index,
            length=length,
            image_size=image_size,
            action_dim=action_dim,
            state_dim=state_dim,
            num_concepts=len(concepts),
            seed=seed,
        )
        meta = EpisodeMetadata(
            episode_id=name,
            task="synthetic",
            seed=seed,
            length=length,
            pixel_shape=(3, image_size, image_size),
            action_dim=action_dim,
            state_dim=state_dim,
            concepts=tuple(concepts),
            run_id="synthetic",
            source="aime.replay.synthetic",
        )
        table = episode_table(arrays, meta)
        paths.append(store.write(name, table, row_group_steps=row_group_steps, compression=compression))
    return paths

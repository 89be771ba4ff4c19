"""RolloutWorker in-process (no Ray) and as a Ray actor."""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aime.actors.policy import make_policy
from aime.actors.recorder import EpisodeRecorder
from aime.actors.rollout import RolloutWorker
from aime.config import Config, load_config
from aime.envs import make_env_from_config
from aime.replay.schema import CONCEPT_PREFIX, check_schema
from aime.run.rundir import create_run_dir


def _worker_kwargs(cfg: Config, num_envs: int = 2) -> dict:
    return dict(
        make_env=functools.partial(make_env_from_config, cfg.env),
        make_policy=functools.partial(make_policy, cfg.collect.policy),
        replay=cfg.replay,
        run_id=cfg.run_id,
        seed=cfg.seed,
        task=cfg.env.task,
        num_envs=num_envs,
    )


@pytest.fixture
def resolved(tmp_path) -> Config:
    cfg = load_config(Config, "tiny", [f"results_dir={tmp_path}", "env.max_episode_steps=12"])
    return create_run_dir(cfg)[0]


def test_episodes_follow_the_schema_and_rlds_alignment(resolved):
    worker = RolloutWorker(0, **_worker_kwargs(resolved))
    try:
        records = worker.run_episodes([0, 1, 2])
    finally:
        worker.close()
    assert [r.slot for r in records] == [0, 1, 2]
    for record in records:
        assert record.steps == 12 and len(record.files) == 1
        table = pq.read_table(record.files[0])
        meta = check_schema(table.schema)
        assert meta.length == 13 and meta.task == "cheetah-run" and meta.pixel_shape == (3, 32, 32)
        assert table.column("step").to_pylist() == list(range(13))
        assert table.column("is_first").to_pylist() == [True] + [False] * 12
        assert table.column("is_last").to_pylist() == [False] * 12 + [True]
        actions = np.array(table.column("action").to_pylist())
        assert np.all(actions[-1] == 0) and np.all(np.abs(actions[:-1]).sum(axis=1) > 0)
        assert set(meta.concepts) and all(CONCEPT_PREFIX + c in table.column_names for c in meta.concepts)
        assert meta.episode_return == pytest.approx(sum(table.column("reward").to_pylist()), rel=1e-5)


def test_a_slot_rerun_rewrites_the_identical_episode(resolved):
    worker = RolloutWorker(0, **_worker_kwargs(resolved, num_envs=1))
    try:
        first = worker.run_episodes([5])[0]
        before = pq.read_table(first.files[0]).drop_columns([])
        again = worker.run_episodes([5])[0]
    finally:
        worker.close()
    assert again.files == first.files  # same name: a retry replaces, never duplicates
    after = pq.read_table(again.files[0])
    for column in ("pixels", "action", "reward", "state"):
        assert before.column(column).equals(after.column(column)), column


def test_long_episodes_are_split_into_chunks(tmp_path):
    cfg = load_config(
        Config, "tiny", [f"results_dir={tmp_path}", "env.max_episode_steps=20", "replay.chunk_steps=8"]
    )
    cfg = create_run_dir(cfg)[0]
    worker = RolloutWorker(0, **_worker_kwargs(cfg, num_envs=1))
    try:
        record = worker.run_episodes([0])[0]
    finally:
        worker.close()
    lengths = [pq.read_metadata(f).num_rows for f in record.files]
    assert lengths == [8, 8, 5] and record.steps == 20
    steps = np.concatenate([pq.read_table(f).column("step").to_numpy() for f in record.files])
    np.testing.assert_array_equal(steps, np.arange(21))


def test_policy_weights_update_while_running_is_stamped_on_steps(resolved):
    import threading

    worker = RolloutWorker(0, **_worker_kwargs(resolved, num_envs=1))
    step, calls = worker.envs.step, []

    def step_then_update(*args):
        calls.append(1)
        if len(calls) == 5:  # mid-episode, from another thread, as the driver's actor call arrives
            update = threading.Thread(target=worker.set_policy_weights, args=({"w": 1}, 3))
            update.start()
            update.join()
        return step(*args)

    worker.envs.step = step_then_update
    try:
        record = worker.run_episodes([0])[0]
    finally:
        worker.close()
    versions = pq.read_table(record.files[0]).column("policy_version").to_pylist()
    assert record.policy_version == 3 and len(calls) > 6
    # Steps acted before the update carry version 0, every step after it version 3.
    assert versions == sorted(versions) and versions[0] == 0 and versions[-1] == 3, versions


def test_worker_as_ray_actor(resolved, ray_local):
    from aime.actors.remote import rollout_actor

    actor = rollout_actor(resolved.collect, worker_id=0, **_worker_kwargs(resolved))
    try:
        records = ray_local.get(actor.run_episodes.remote([0, 1]))
        assert ray_local.get(actor.steps_done.remote()) == 24
    finally:
        ray_local.kill(actor)
    assert [r.steps for r in records] == [12, 12]


def test_collect_resources_are_requested_by_every_rollout_actor(resolved, ray_local):
    """collect.resources puts rollout actors only on nodes that declare them: this single-node Ray
    has no "rollout" resource, so the actor waits, asking for exactly what the config says."""
    import dataclasses

    from ray.util.state import get_actor

    from aime.actors.remote import rollout_actor

    c = dataclasses.replace(resolved.collect, resources={"rollout": 1.0}, cpus_per_worker=0.5)
    actor = rollout_actor(c, worker_id=0, **_worker_kwargs(resolved))
    try:
        state = get_actor(actor._actor_id.hex())
        assert state is not None and state.required_resources == {"rollout": 1.0, "CPU": 0.5}, state
        ready, _ = ray_local.wait([actor.ready.remote()], timeout=2)
        assert not ready, "placed on a node without the resource"
    finally:
        ray_local.kill(actor)


def test_lockstep_environments_write_the_episodes_one_environment_writes(tmp_path):
    def episodes(num_envs: int) -> dict[str, pa.Table]:
        cfg = load_config(
            Config,
            "tiny",
            [f"results_dir={tmp_path / str(num_envs)}", "env.max_episode_steps=12", "run_id=same"],
        )
        cfg = create_run_dir(cfg)[0]
        worker = RolloutWorker(0, **_worker_kwargs(cfg, num_envs=num_envs))
        try:
            records = worker.run_episodes([0, 1, 2])
        finally:
            worker.close()
        return {r.episode_id: pq.read_table(r.files[0]) for r in records}

    alone, together = episodes(1), episodes(3)
    assert alone.keys() == together.keys()
    for episode_id, table in alone.items():
        other = together[episode_id]
        for column in table.column_names:
            if column != "pixels":
                assert table.column(column).equals(other.column(column)), (episode_id, column)
        a, b = (np.frombuffer(b"".join(t.column("pixels").to_pylist()), np.uint8) for t in (table, other))
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1, episode_id  # tiles: see test_lockstep


def test_recorder_grows_past_its_capacity_and_keeps_every_row():
    recorder = EpisodeRecorder(action_dim=2, capacity=4)
    frame = np.zeros((8, 8, 3), np.uint8)
    recorder.start(frame, np.zeros(3, np.float32), {"concepts": {"c": True}})
    chunks = []
    for t in range(1, 11):
        frame = np.full((8, 8, 3), t, np.uint8)
        action = np.full(2, t, np.float32)
        info = {"concepts": {"c": t % 2 == 0}}
        chunks += recorder.step(action, float(t), frame, np.full(3, t, np.float32), info, False, t == 10, 7)
    (chunk,) = chunks
    assert len(chunk) == 11 and not recorder.active
    np.testing.assert_array_equal(chunk.pixels[:, 0, 0, 0], np.arange(11))
    np.testing.assert_array_equal(chunk.reward, [*range(1, 11), 0])
    np.testing.assert_array_equal(chunk.action[:, 0], [*range(1, 11), 0])
    np.testing.assert_array_equal(chunk.step, np.arange(11))
    assert chunk.is_first.tolist() == [True] + [False] * 10 and chunk.is_last.tolist() == [False] * 10 + [
        True
    ]
    assert chunk.concepts[:, 0].tolist() == [True] + [t % 2 == 0 for t in range(1, 11)]

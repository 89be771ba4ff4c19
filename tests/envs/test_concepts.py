"""Concept files of the supported tasks: well formed, and informative under random play."""

from __future__ import annotations

import pytest
import yaml

from aime.envs import SUPPORTED_TASKS, make_env
from aime.envs.concepts import CONCEPT_DIR, _parse_rule

# Long enough for each task's random episode to flip a concept (measured: all flip within 60 steps),
# short enough to keep the whole suite to a few seconds on a CPU.
EPISODE_STEPS = 100


@pytest.mark.parametrize("task", SUPPORTED_TASKS)
def test_random_episode_concepts(task: str) -> None:
    with open(CONCEPT_DIR / f"{task}.yaml") as f:
        names = list(yaml.safe_load(f))
    assert len(names) >= 4

    env = make_env(task, seed=0, image_size=16, max_episode_steps=EPISODE_STEPS)
    try:
        _, info = env.reset(seed=0)
        env.action_space.seed(0)
        history = [info["concepts"]]
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(env.action_space.sample())
            history.append(info["concepts"])
            done = terminated or truncated
    finally:
        env.close()

    assert len(history) == EPISODE_STEPS + 1
    for concepts in history:
        assert list(concepts) == names
        assert all(type(value) is bool for value in concepts.values()), concepts
    changed = [name for name in names if len({concepts[name] for concepts in history}) == 2]
    assert changed, f"no concept of {task} changed during a random episode"


def test_unknown_quantity_is_rejected(tmp_path) -> None:
    path = tmp_path / "cheetah-run.yaml"
    path.write_text("levitating: {quantity: altitude, above: 1.0}\n")
    ((name, body),) = yaml.safe_load(path.read_text()).items()
    with pytest.raises(ValueError, match="'altitude'"):
        _parse_rule(name, body, path)

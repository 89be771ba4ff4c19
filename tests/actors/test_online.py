"""Online collection's actors: packed into few lockstep actors on a GPU, as configured on a CPU."""

from __future__ import annotations

import pytest

from aime.actors.online import online_actors
from aime.config import CollectConfig


@pytest.mark.parametrize(
    ("workers", "envs", "packed"),
    [(12, 1, (1, 12)), (2, 1, (1, 2)), (20, 1, (2, 10)), (4, 16, (4, 16)), (3, 8, (2, 12))],
)
def test_on_a_gpu_the_same_environments_run_in_as_few_actors_as_possible(workers, envs, packed):
    c = CollectConfig(workers=workers, envs_per_worker=envs)
    online = online_actors(c, on_gpu=True)
    assert (online.workers, online.envs_per_worker) == packed
    assert online.workers * online.envs_per_worker >= workers * envs  # never fewer environments
    assert online.cpus_per_worker == c.cpus_per_worker and online.episodes == c.episodes


def test_on_a_cpu_the_actors_stay_as_configured():
    c = CollectConfig(workers=12, envs_per_worker=1)
    assert online_actors(c, on_gpu=False) == c

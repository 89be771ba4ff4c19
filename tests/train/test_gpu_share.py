"""``train.gpus_per_worker``: what each Ray Train worker reserves, and when GPUs are used at all.

A fraction lets several trials of a sweep share one GPU (the GPU machine's quality sweep runs four);
the pure functions are checked against cluster sizes here, the real sharing on the GPU machine
(``cluster/configs/sweep/gpu_quality.yaml``).
"""

from __future__ import annotations

import pytest

from aime.config import ConfigError, load_config
from aime.config.schema import Config
from aime.train.driver import resolve_use_gpu, worker_resources


def _cfg(*overrides: str) -> Config:
    return load_config(Config, "tiny", list(overrides))


def test_a_quarter_gpu_per_worker_uses_a_gpu_a_quarter_can_be_found_in():
    cfg = _cfg("train.num_workers=1", "train.gpus_per_worker=0.25")
    assert resolve_use_gpu(cfg, cluster_gpus=1.0) is True
    assert resolve_use_gpu(cfg, cluster_gpus=0.0) is False  # auto: CPU workers
    assert worker_resources(cfg, use_gpu=True) == {"CPU": cfg.train.cpus_per_worker, "GPU": 0.25}
    assert worker_resources(cfg, use_gpu=False) == {"CPU": cfg.train.cpus_per_worker}


def test_whole_gpus_per_worker_need_that_many_for_each_worker():
    cfg = _cfg("train.num_workers=2", "train.gpus_per_worker=1")
    assert resolve_use_gpu(cfg, cluster_gpus=1.0) is False
    assert resolve_use_gpu(cfg, cluster_gpus=2.0) is True
    forced = _cfg("train.num_workers=2", "train.gpus_per_worker=0.5", "train.use_gpu=true")
    assert resolve_use_gpu(forced, cluster_gpus=1.0) is True
    short = _cfg("train.num_workers=2", "train.gpus_per_worker=0.75", "train.use_gpu=true")
    with pytest.raises(ValueError, match=r"gpus_per_worker=0.75 needs 1.5 GPUs, but the Ray cluster has 1"):
        resolve_use_gpu(short, 1.0)


@pytest.mark.parametrize("value", ["0", "-0.5"])
def test_a_gpu_share_that_is_not_positive_names_the_key(value):
    with pytest.raises(ConfigError, match="train.gpus_per_worker"):
        _cfg(f"train.gpus_per_worker={value}")

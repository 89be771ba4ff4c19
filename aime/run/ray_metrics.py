"""aime's own series in the Ray dashboard: ``ray.util.metrics`` gauges and counters, defined here once.

    collect driver (actors/collect.py)   --each finished batch, each log interval--> aime_env_*, aime_replay_*
    train driver (train/driver.py)       --each metrics.jsonl record it follows--> aime_train_*, aime_eval_*
    Serve ingress (serve/middleware.py)  --each response--> aime_serve_requests

Each process hands its series to its node's metrics agent every ``metrics_report_interval_ms`` (10 s
by default); Prometheus scrapes the agent at the node's ``metrics_export_port``. On export Ray puts
``ray_`` in front and counters gain ``_total``: ``aime_env_frames`` is scraped as
``ray_aime_env_frames_total``. ``cluster/grafana/aime.json`` charts every series defined here.

The callers record numbers they already hold as Python floats, at the cadence they already log them:
no device sync and no extra I/O. A gauge lives as long as the process that sets it (the agent drops a
dead process's gauges after two export intervals); counters are kept. Without Ray the calls do nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from aime import metrics as M

GAUGE, COUNTER = "gauge", "counter"

# Collection (the collect driver), per run and phase (rollout, or online during aime run).
ENV_FRAMES = "aime_env_frames"  # env/frames: rendered observations of finished episodes, per actor
ENV_EPISODES = "aime_env_episodes"  # env/episodes, per actor
ENV_FRAMES_PER_SECOND = "aime_env_frames_per_second"  # env/frames_per_second: since the collection began
ENV_WORKER_FAILURES = "aime_env_worker_failures"  # env/worker_failures: failed calls re-queued on a new actor
# The replay store (as the collect driver sees it after each batch), per store root.
REPLAY_EPISODES = "aime_replay_episodes"
REPLAY_STEPS = "aime_replay_steps"
REPLAY_BYTES = "aime_replay_bytes"
# Training (the train driver, from the reports it follows), per run.
TRAIN_STEP = "aime_train_step"
TRAIN_LOSS = "aime_train_loss"  # train/total
TRAIN_SAMPLES_PER_SECOND = "aime_train_samples_per_second"
TRAIN_DATA_WAIT_FRACTION = "aime_train_data_wait_fraction"
# When the newest checkpoint was reported (Unix seconds): its age is time() minus this, in PromQL, so
# the age keeps growing between reports instead of freezing at the last one.
TRAIN_CHECKPOINT_TIMESTAMP = "aime_train_checkpoint_timestamp_seconds"
EVAL_PSNR_GAIN_ONE_STEP = "aime_eval_psnr_gain_one_step"
EVAL_PSNR_GAIN_MEAN = "aime_eval_psnr_gain_mean"
# Serving (the ingress replicas), per API route and HTTP status.
SERVE_REQUESTS = "aime_serve_requests"

RUN, ACTOR = ("run_id", "phase"), ("run_id", "phase", "actor")
SPECS: dict[str, tuple[str, tuple[str, ...], str]] = {  # name -> (kind, tag keys, description)
    ENV_FRAMES: (COUNTER, ACTOR, "Frames (agent steps) of the episodes an actor finished."),
    ENV_EPISODES: (COUNTER, ACTOR, "Episodes an actor finished and wrote to replay."),
    ENV_FRAMES_PER_SECOND: (GAUGE, RUN, "Frames per second since the collection began."),
    ENV_WORKER_FAILURES: (COUNTER, RUN, "Rollout calls that failed and were re-run on a new actor."),
    REPLAY_EPISODES: (GAUGE, ("store",), "Episodes in the replay store."),
    REPLAY_STEPS: (GAUGE, ("store",), "Rows (observations) in the replay store."),
    REPLAY_BYTES: (GAUGE, ("store",), "Bytes of the replay store's episode files."),
    TRAIN_STEP: (GAUGE, ("run_id",), "The last reported training step."),
    TRAIN_LOSS: (GAUGE, ("run_id",), "Total training loss at the last logged step."),
    TRAIN_SAMPLES_PER_SECOND: (GAUGE, ("run_id",), "Training windows per second over all workers."),
    TRAIN_DATA_WAIT_FRACTION: (GAUGE, ("run_id",), "Share of step time spent waiting for batches."),
    TRAIN_CHECKPOINT_TIMESTAMP: (GAUGE, ("run_id",), "Unix time of the newest checkpoint's report."),
    EVAL_PSNR_GAIN_ONE_STEP: (GAUGE, ("run_id",), "Held-out one-step PSNR over copy-last-frame (dB)."),
    EVAL_PSNR_GAIN_MEAN: (GAUGE, ("run_id",), "Held-out PSNR over copy-last-frame, horizon mean (dB)."),
    SERVE_REQUESTS: (COUNTER, ("route", "status"), "HTTP requests answered, by route and status."),
}

# metrics.jsonl key -> the gauge that mirrors it
TRAIN_GAUGES = {
    "step": TRAIN_STEP,
    M.TRAIN_TOTAL: TRAIN_LOSS,
    M.TRAIN_SAMPLES_PER_SECOND: TRAIN_SAMPLES_PER_SECOND,
    M.TRAIN_DATA_WAIT: TRAIN_DATA_WAIT_FRACTION,
    M.EVAL_PSNR_GAIN_ONE_STEP: EVAL_PSNR_GAIN_ONE_STEP,
    M.EVAL_PSNR_GAIN_MEAN: EVAL_PSNR_GAIN_MEAN,
}


def exported_name(name: str) -> str:
    """The series name Prometheus scrapes for ``name``."""
    return f"ray_{name}_total" if SPECS[name][0] == COUNTER else f"ray_{name}"


@functools.cache
def _metric(name: str) -> Any:
    """The one Gauge or Counter of ``name``, made on first use (in the process that records it)."""
    from ray.util.metrics import Counter, Gauge

    kind, tag_keys, description = SPECS[name]
    return (Counter if kind == COUNTER else Gauge)(name, description, tag_keys=tag_keys)


def _set(name: str, value: float, tags: dict[str, str]) -> None:
    _metric(name).set(float(value), tags=tags)


def _inc(name: str, value: float, tags: dict[str, str]) -> None:
    if value > 0:  # a counter refuses 0
        _metric(name).inc(float(value), tags=tags)


def collected(run_id: str, phase: str, actor: int, *, episodes: int, frames: int) -> None:
    """Actor ``actor`` finished ``episodes`` episodes of ``frames`` frames in all."""
    tags = {"run_id": run_id, "phase": phase, "actor": str(actor)}
    _inc(ENV_EPISODES, episodes, tags)
    _inc(ENV_FRAMES, frames, tags)


def collection_rate(run_id: str, phase: str, frames_per_second: float) -> None:
    _set(ENV_FRAMES_PER_SECOND, frames_per_second, {"run_id": run_id, "phase": phase})


def worker_failed(run_id: str, phase: str) -> None:
    _inc(ENV_WORKER_FAILURES, 1, {"run_id": run_id, "phase": phase})


def replay_size(store: str, *, episodes: int, steps: int, size_bytes: int) -> None:
    tags = {"store": store}
    _set(REPLAY_EPISODES, episodes, tags)
    _set(REPLAY_STEPS, steps, tags)
    _set(REPLAY_BYTES, size_bytes, tags)


def training_record(run_id: str, record: Mapping[str, Any]) -> None:
    """A metrics.jsonl record of training: the gauges for the keys it has."""
    tags = {"run_id": run_id}
    for key, name in TRAIN_GAUGES.items():
        value = record.get(key)
        if isinstance(value, int | float):
            _set(name, value, tags)
    if M.TRAIN_CHECKPOINT in record and isinstance(record.get("time"), int | float):
        _set(TRAIN_CHECKPOINT_TIMESTAMP, record["time"], tags)


def served(route: str, status: int) -> None:
    _inc(SERVE_REQUESTS, 1, {"route": route, "status": str(status)})

"""A sweep from a driver script: the model for users who write their own.

    python examples/sweep.py --store results/<run_id>/replay [--trials 4]

Each trial is a real `aime train` run; Tune's ASHA stops the weak ones at their periodic evaluations.
`aime tune --config <sweep.yaml>` does the same from a YAML file, with a results table and best config.
"""

import argparse

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from aime.tune import SweepConfig, trainable

parser = argparse.ArgumentParser()
parser.add_argument("--store", required=True, help="a replay store to train every trial on")
parser.add_argument("--trials", type=int, default=4)
args = parser.parse_args()

sweep = SweepConfig(
    name="example",
    base="tiny",
    overrides=(f"replay.root={args.store}", "train.steps=200", "train.checkpoint_every=50"),
    space={"model.optim.lr": {"loguniform": [1e-4, 3e-3]}},
)
ray.init()
tuner = tune.Tuner(
    trainable(sweep, experiment_dir="results/sweeps/example"),
    param_space={"params": {"model.optim.lr": tune.loguniform(1e-4, 3e-3)}},
    tune_config=tune.TuneConfig(
        metric=sweep.metric,
        mode="max",
        num_samples=args.trials,
        scheduler=ASHAScheduler(max_t=4),
        max_concurrent_trials=1,  # a trial holds no CPU itself (its workers do): Tune would start all
    ),
)
best = tuner.fit().get_best_result()
print(
    "best learning rate:",
    best.config["params"]["model.optim.lr"],
    f"{sweep.metric}:",
    best.metrics[sweep.metric],
)

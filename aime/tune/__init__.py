"""Ray Tune sweeps over world-model training (``aime tune``, ``examples/sweep.py``). See README.md.

config.py   SweepConfig from cluster/configs/sweep/<name>.yaml: base experiment, space, metric, ...
check.py    errors before any trial starts (unknown key, wrong type, unknown metric, resources)
space.py    the space as Tune domains; the scheduler (ASHA or none) and searcher (random, optuna)
trial.py    ``trainable(sweep, ...)``: each trial a real aime train run reporting its periodic evals
driver.py   ``run_sweep``: data once, the Tuner (or its resume), the report
report.py   results.csv, metric.png, best.yaml, best.json
"""

from aime.tune.config import SweepConfig, load_sweep
from aime.tune.trial import trainable

__all__ = ["SweepConfig", "load_sweep", "trainable"]

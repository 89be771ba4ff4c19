"""derive_seed: one seed per named component, independent across names; seed_everything seeds torch
only where asked."""

from __future__ import annotations

import subprocess
import sys

from aime.run.seeding import derive_seed


def test_names_with_a_common_prefix_get_different_seeds():
    # The first 4 bytes used to decide: "actor-1" and "actor-2" shared a seed.
    names = ["actor-1", "actor-2", "actorx", "model", "model-ema", "numpy", "torch"]
    seeds = {name: derive_seed(0, name) for name in names}
    assert len(set(seeds.values())) == len(names), seeds


def test_seeds_are_stable_and_depend_on_every_key():
    assert derive_seed(3, "episode", 7) == derive_seed(3, "episode", 7)
    assert len({derive_seed(3, "episode", i) for i in range(100)}) == 100
    assert derive_seed(3, "episode", 7) != derive_seed(4, "episode", 7)
    assert all(0 <= derive_seed(s, "x") < 2**32 for s in range(20))


def test_a_process_that_does_not_draw_from_torch_seeds_without_importing_it():
    probe = (
        "import random, sys, numpy as np\n"
        "from aime.run.seeding import seed_everything\n"
        "seed_everything(5, torch_rng=False)\n"
        "first = (random.random(), float(np.random.rand()))\n"
        "seed_everything(5, torch_rng=False)\n"
        "print('torch' in sys.modules, first == (random.random(), float(np.random.rand())))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]

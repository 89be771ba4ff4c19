"""How rendering scales with processes and with environments per process (prints JSON).

    python benchmarks/render_scaling.py [--processes 1 4 8 15] [--envs 1 8 16] [--steps 400]

Each of P processes steps E cheetah-run physics (raw ``mj_step`` substeps, action repeat 2, as the
floor of ``rollout.py``) and renders their E frames at 64x64 lite, either as tiles of one
framebuffer with one read-back (``tiled``) or one read-back per frame (``separate``, what one
environment per process does). Processes start together (a barrier); the rate is all frames over
the span from the first start to the last end. A frame is one rendered observation.

The question it answers: whether many processes rendering through EGL on one GPU serialise on
read-backs, and whether batching frames per read-back lifts that ceiling.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")


def _worker(envs: int, steps: int, tiled: bool, barrier, out) -> None:
    import mujoco
    import numpy as np
    from dm_control import suite

    from aime.envs.render import PixelRenderer

    physics = [suite.load("cheetah", "run", task_kwargs={"random": i}).physics for i in range(envs)]
    renderer = PixelRenderer(physics[0], 64, 64, camera=0, lite=True, tiles=envs if tiled else 1)
    rng = np.random.default_rng(0)
    substeps = 2 * 1  # cheetah's control step is one physics step; action repeat 2
    render_seconds = 0.0
    barrier.wait()
    start = time.perf_counter()
    for _ in range(steps):
        for p in physics:
            p.data.ctrl[:] = rng.uniform(-1, 1, p.model.nu)
            for _ in range(substeps):
                mujoco.mj_step(p.model.ptr, p.data.ptr)
        t = time.perf_counter()
        if tiled:
            renderer.render_many(physics)
        else:
            for p in physics:
                renderer.render_many([p])
        render_seconds += time.perf_counter() - t
    end = time.perf_counter()
    out.put(
        {
            "start": start,
            "end": end,
            "render_ms_per_frame": render_seconds / (steps * envs) * 1e3,
            "gl": renderer.gl_renderer(),
        }
    )
    renderer.close()


def measure(processes: int, envs: int, steps: int, tiled: bool) -> dict:
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(envs, steps, tiled, barrier, out)) for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    frames = processes * envs * steps
    return {
        "processes": processes,
        "envs_per_process": envs,
        "mode": "tiled" if tiled else "separate",
        "frames_per_second": round(frames / span, 1),
        "per_process_frames_per_second": round(frames / span / processes, 1),
        "render_ms_per_frame": round(sum(r["render_ms_per_frame"] for r in results) / processes, 4),
        "gl": results[0]["gl"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 4, 8, 15])
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--steps", type=int, default=1500, help="frames per process")
    args = parser.parse_args()
    rows = []
    for processes in args.processes:
        for envs in args.envs:
            modes = [False] if envs == 1 else [False, True]
            for tiled in modes:
                rows.append(measure(processes, envs, max(args.steps // envs, 10), tiled))
                print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

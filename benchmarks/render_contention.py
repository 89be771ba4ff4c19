"""What EGL rendering on the training GPU costs a CUDA workload beside it (prints JSON).

    python benchmarks/render_contention.py [--processes 12] [--envs 16] [--seconds 6]

A CUDA workload runs in this process, alone and then beside P processes that each step E
cheetah-run physics and render their frames (64x64 lite) through EGL on the same GPU, either one
read-back per frame (``separate``: one environment per actor, as online collection did) or as tiles
with one read-back per lockstep step (``tiled``: ``aime.envs.lockstep``). Two workloads: ``small``,
a launch-bound loop of small kernels like the world model's step in eager mode, and ``matmul``,
bf16 matrix products that keep the GPU busy. The question: how much of the trainer's rate the
renderers take, and whether fewer, larger read-backs give it back. Rates are per second.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")


def _renderer(envs: int, tiled: bool, ready, stop, frames) -> None:
    import mujoco
    import numpy as np
    from dm_control import suite

    from aime.envs.render import PixelRenderer

    physics = [suite.load("cheetah", "run", task_kwargs={"random": i}).physics for i in range(envs)]
    renderer = PixelRenderer(physics[0], 64, 64, camera=0, lite=True, tiles=envs if tiled else 1)
    rng = np.random.default_rng(0)
    ready.release()
    while not stop.is_set():
        for p in physics:
            p.data.ctrl[:] = rng.uniform(-1, 1, p.model.nu)
            for _ in range(2):
                mujoco.mj_step(p.model.ptr, p.data.ptr)
        if tiled:
            renderer.render_many(physics)
        else:
            for p in physics:
                renderer.render_many([p])
        with frames.get_lock():
            frames.value += envs
    renderer.close()


def _workloads():
    import torch

    torch.manual_seed(0)
    layers = [torch.nn.Linear(512, 512).cuda() for _ in range(6)]
    params = [p for layer in layers for p in layer.parameters()]
    opt = torch.optim.Adam(params, lr=1e-4)
    x = torch.randn(48, 512, device="cuda")
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)

    def small() -> None:  # ~16 x 6 small matmuls forward and back, the optimizer's small kernels
        h = x
        for _ in range(16):
            for layer in layers:
                h = torch.tanh(layer(h))
        h.square().mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def matmul() -> None:
        a @ a

    return {"small": small, "matmul": matmul}


def _rate(fn, seconds: float) -> float:
    import torch

    fn()
    torch.cuda.synchronize()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(5):
            fn()
        torch.cuda.synchronize()
        count += 5
    return count / (time.perf_counter() - start)


def beside(processes: int, envs: int, tiled: bool, seconds: float, workloads) -> dict:
    ctx = mp.get_context("spawn")
    ready, stop, frames = ctx.Semaphore(0), ctx.Event(), ctx.Value("q", 0)
    procs = [ctx.Process(target=_renderer, args=(envs, tiled, ready, stop, frames)) for _ in range(processes)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire(timeout=120)
    time.sleep(1.0)  # all rendering
    out: dict = {"processes": processes, "envs": envs, "mode": "tiled" if tiled else "separate"}
    start_frames, start = frames.value, time.perf_counter()
    for name, fn in workloads.items():
        out[f"{name}_per_second"] = round(_rate(fn, seconds), 2)
    out["render_frames_per_second"] = round((frames.value - start_frames) / (time.perf_counter() - start), 1)
    stop.set()
    for p in procs:
        p.join(timeout=60)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[12])
    parser.add_argument("--envs", type=int, default=16, help="E for the tiled runs")
    parser.add_argument("--seconds", type=float, default=6.0, help="per workload and configuration")
    args = parser.parse_args()
    workloads = _workloads()
    alone = {f"{name}_per_second": round(_rate(fn, args.seconds), 2) for name, fn in workloads.items()}
    rows = [{"processes": 0, **alone}]
    print(json.dumps(rows[-1]), flush=True)
    for processes in args.processes:
        for envs, tiled in ((1, False), (args.envs, True)):
            rows.append(beside(processes, envs, tiled, args.seconds, workloads))
            for name in workloads:
                key = f"{name}_per_second"
                rows[-1][f"{name}_vs_alone"] = round(rows[-1][key] / alone[key], 3)
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()

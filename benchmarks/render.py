"""Frame cost of aime's renderer on this machine, and which EGL device it chose (prints JSON).

    python benchmarks/render.py [--task cheetah-run] [--image-size 64] [--frames 300]

Each case runs in a fresh process (EGL is chosen once per process): lite and default scene flags,
with ``CUDA_VISIBLE_DEVICES`` unset and, on GPU machines, set to each visible GPU as Ray would set it
for a GPU actor. Reports ms per frame (render only), the GL renderer string and the EGL device id.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def measure(task: str, size: int, frames: int, lite: bool) -> dict:
    os.environ.setdefault("MUJOCO_GL", "egl")
    import numpy as np

    from aime.envs import make_env

    env = make_env(task, seed=0, image_size=size, render_lite=lite)
    env.reset(seed=0)
    renderer = env._renderer
    for _ in range(10):
        renderer.render()
    from OpenGL import GL

    gl_renderer = GL.glGetString(GL.GL_RENDERER).decode()
    start = time.perf_counter()
    for _ in range(frames):
        env.physics.step()
        renderer.render()
    ms = (time.perf_counter() - start) / frames * 1e3
    pixels = renderer.render()
    env.close()
    return {
        "ms_per_frame": round(ms, 4),
        "gl_renderer": gl_renderer,
        "egl_device_id": os.environ.get("MUJOCO_EGL_DEVICE_ID"),
        "frame_mean": float(np.mean(pixels)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="cheetah-run")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: "lite" or "default", in a child
    args = parser.parse_args()
    if args.case:
        print(json.dumps(measure(args.task, args.image_size, args.frames, args.case == "lite")))
        return
    gpus = _gpu_count()
    visibility = [None] + [str(i) for i in range(gpus)]
    out: dict = {"task": args.task, "image_size": args.image_size, "gpus": gpus, "cases": []}
    for visible in visibility:
        for case in ("lite", "default"):
            env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("CUDA_VISIBLE_DEVICES", "MUJOCO_EGL_DEVICE_ID")
            }
            if visible is not None:
                env["CUDA_VISIBLE_DEVICES"] = visible
            child = [
                sys.executable,
                __file__,
                "--case",
                case,
                "--task",
                args.task,
                "--image-size",
                str(args.image_size),
            ]
            result = subprocess.run(
                child + ["--frames", str(args.frames)], env=env, capture_output=True, text=True
            )
            record = {"cuda_visible_devices": visible, "flags": case}
            if result.returncode == 0:
                record |= json.loads(result.stdout.strip().splitlines()[-1])
            else:
                record["error"] = result.stderr.strip().splitlines()[-1:]
            out["cases"].append(record)
    print(json.dumps(out, indent=2))


def _gpu_count() -> int:
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))


if __name__ == "__main__":
    main()

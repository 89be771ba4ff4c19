#!/usr/bin/env bash
# The GPU node's figures in the README, measured in the order the README reports them (issues 16, 12).
#
#   bash benchmarks/gpu_node.sh OUT_DIR [STEP ...]     (from the repository root, on a GPU node)
#
# Steps, all by default, in this order:
#   tests    the CUDA-only tests (they skip without a GPU; here they must pass)
#   fill     the gpu preset for 20 steps: fills the compile caches, times a cold start
#   warm     the gpu preset as users run it, right after `fill` (warm caches), timed as a whole
#   imports  a 5-step `aime train` on warm's store with Python's import timing in every Ray worker
#            (import_times.py: the training worker's and Train controller's import seconds) and
#            train.profile_startup (startup_rank0.txt: cProfile of the worker up to its first step)
#   serve    serve_load with one GPU replica and direct ingress
#   collect  `aime collect` of 150 episodes with 15 workers, preload off and on, alternated 3 times
# Each step writes its JSON and log into OUT_DIR, then touches OUT_DIR/done_<step>, so a caller
# polling from elsewhere sees how far it got. Needs MUJOCO_GL=egl and, for DeepSpeed on H100/H200,
# TORCH_CUDA_ARCH_LIST=9.0 (both set here when unset).
set -uo pipefail
out=${1:?usage: benchmarks/gpu_node.sh OUT_DIR [tests fill warm imports serve collect]}
shift
steps=${*:-tests fill warm imports serve collect}
mkdir -p "$out"
export MUJOCO_GL=${MUJOCO_GL:-egl} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export RAY_USAGE_STATS_ENABLED=${RAY_USAGE_STATS_ENABLED:-0} WANDB_MODE=${WANDB_MODE:-offline}
python=${PYTHON:-python}

newest_run() { ls -td "${1:-results}"/*/ 2>/dev/null | head -1; }

for step in $steps; do
  case $step in
    tests)
      $python -m pytest -q -p no:cacheprovider -rs tests/models/test_dream_compile.py \
        tests/models/test_rollout_cuda_graphs.py tests/models/test_balancing_gpu.py \
        tests/lenses/test_bank_gpu.py > "$out/tests.log" 2>&1 ;;
    fill)
      $python benchmarks/main_job_gpu.py --config gpu --out "$out/fill.json" \
        train.steps=20 train.checkpoint_every=20 collect.online_episodes=0 > "$out/fill.log" 2>&1 ;;
    warm)
      $python benchmarks/main_job_gpu.py --config gpu --out "$out/main_job_gpu_warm.json" \
        > "$out/warm.log" 2>&1
      run=$(newest_run)
      for f in metrics.jsonl eval.json config.yaml; do [ -n "$run" ] && cp "$run/$f" "$out/warm_$f"; done ;;
    imports)
      run=$(newest_run)
      ray_logs=$(mktemp -d)
      PYTHONPROFILEIMPORTTIME=1 RAY_TMPDIR=$ray_logs $python -m aime.cli.main train --config gpu \
        --no-progress replay.root="${run}replay" train.steps=5 train.checkpoint_every=5 \
        train.profile_startup=true results_dir=/tmp/aime-imports > "$out/imports.log" 2>&1
      cp "$(newest_run /tmp/aime-imports)profile/startup_rank0.txt" "$out/" 2>> "$out/imports.log"
      for actor in RayTrainWorker TrainController; do
        $python benchmarks/import_times.py $(find "$ray_logs" -name "worker-*.err") --match $actor \
          > "$out/import_times_$actor.json" 2>> "$out/imports.log"
      done ;;
    serve)
      $python benchmarks/serve_load.py --num-gpus 1 --direct-ingress --requests 200 --seconds 30 \
        --out "$out/serve_load.json" > "$out/serve.log" 2>&1 ;;
    collect)
      for i in 1 2 3; do
        for preload in false true; do
          start=$(date +%s.%N)
          $python -m aime.cli.main collect --task cheetah-run --episodes 150 --workers 15 \
            env.image_size=64 results_dir=/tmp/aime-collect-150 ray.preload_rollout_modules=$preload \
            > "$out/collect_one.log" 2>&1
          end=$(date +%s.%N)
          { echo "=== run $i ray.preload_rollout_modules=$preload"; grep -E "seconds|frames  " "$out/collect_one.log"
            echo "command wall seconds $($python -c "print(round($end - $start, 2))")"
          } >> "$out/collect_150.txt"
        done
      done ;;
    *) echo "unknown step: $step (tests fill warm imports serve collect)" >&2; exit 2 ;;
  esac
  touch "$out/done_$step"
done

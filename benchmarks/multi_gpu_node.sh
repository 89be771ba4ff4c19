#!/usr/bin/env bash
# The multi-GPU node's figures for the README (issue 17), most wanted first: a session's device time
# may end partway, and every finished step has already written its files.
#
#   bash benchmarks/multi_gpu_node.sh OUT_DIR [STEP ...]     (from the repository root, on one host)
#
# Steps, all by default, in this order (GPUS: the host's GPU count, or set GPUS=4 for 1, 2 and 4):
#   z2-sum-48   train_gpu.py, ZeRO-2, sum, B=48 per GPU, on 1, 2, 4, ... GPUS: the scaling targets
#   main        `aime run --config gpu` on every GPU: a Ray Train worker per GPU, 16 environments per
#               rollout actor and one actor per GPU (EGL spreads them: docs/RENDERING.md), timed whole
#   capacity    zero_capacity.py on GPUS workers: the widest model ZeRO-2 and ZeRO-3 train at B=2
#               (k = 1, 32, 48, then bisected twice: around the edge predicted for 4-8 H200s)
#   z2-rgb-48 z2-sum-64 z2-rgb-64 z3-sum-48 z3-sum-64   the rest of the scaling table (ZeRO-3 refuses RGB)
# Each step writes its JSON and log into OUT_DIR, then touches OUT_DIR/done_<step>, so a caller polling
# from elsewhere sees how far it got. Needs MUJOCO_GL=egl and, for DeepSpeed on H100/H200,
# TORCH_CUDA_ARCH_LIST=9.0 (both set here when unset).
set -uo pipefail
all="z2-sum-48 main capacity z2-rgb-48 z2-sum-64 z2-rgb-64 z3-sum-48 z3-sum-64"
out=${1:?usage: benchmarks/multi_gpu_node.sh OUT_DIR [$all]}
shift
steps=${*:-$all}
mkdir -p "$out"
export MUJOCO_GL=${MUJOCO_GL:-egl} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export RAY_USAGE_STATS_ENABLED=${RAY_USAGE_STATS_ENABLED:-0} WANDB_MODE=${WANDB_MODE:-offline}
python=${PYTHON:-python}
gpus=${GPUS:-$(nvidia-smi -L 2>/dev/null | wc -l)}
counts=$(n=1; while [ "$n" -le "$gpus" ]; do printf '%s ' "$n"; n=$((n * 2)); done)

newest_run() { ls -td "${1:-results}"/*/ 2>/dev/null | head -1; }

for step in $steps; do  # every name checked before anything runs
  case " $all " in *" $step "*) ;; *) echo "unknown step: $step ($all)" >&2; exit 2 ;; esac
done
if [ "$gpus" -lt 1 ]; then echo "no GPU on this host (nvidia-smi -L lists none; set GPUS=N)" >&2; exit 2; fi

for step in $steps; do
  case $step in
    z[23]-sum-48|z[23]-sum-64|z2-rgb-48|z2-rgb-64)
      IFS=- read -r zero balancing batch <<< "$step"
      # shellcheck disable=SC2086  # $counts is a list of GPU counts
      $python benchmarks/train_gpu.py --workers $counts --batch-size "$batch" --balancing "$balancing" \
        --zero-stage "${zero#z}" --out "$out/train_gpu_${zero}_${balancing}_b${batch}.json" \
        > "$out/$step.log" 2>&1 ;;
    main)
      $python benchmarks/main_job_gpu.py --config gpu --out "$out/main_job_${gpus}gpu.json" \
        train.num_workers="$gpus" collect.workers="$gpus" collect.envs_per_worker=16 \
        collect.online_episodes=$((1536 * gpus)) > "$out/main.log" 2>&1
      run=$(newest_run)
      for f in metrics.jsonl eval.json config.yaml; do [ -n "$run" ] && cp "$run/$f" "$out/main_$f"; done ;;
    capacity)
      # Straight to the edge the README's arithmetic predicts on 8 H200s (ZeRO-2 near k=40, ZeRO-3 near
      # 45; k=1 for the preset's count), then two bisections: 5 probes a stage instead of about 10.
      $python benchmarks/zero_capacity.py --workers "$gpus" --widths 1 32 48 --bisect 2 \
        --out "$out/zero_capacity_${gpus}gpu.json" > "$out/capacity.log" 2>&1 ;;
  esac
  touch "$out/done_$step"
done

#!/usr/bin/env bash
# ModelZoo performance run on one device: a short --benchmark training (no checkpoints), FPS averaged after the warm-up steps.
# Run from the model directory or from test/:
#   bash test/train_performance_1p.sh --data_path=DIR [flags]   (--help lists them)

source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"

Network="UNet_Medical_for_TensorFlow"
max_step=50
batch_size=1
learning_rate=0.0001
crossvalidation_idx=0
base_filters=64
tile_size=572
augment=True
use_xla=False
seed=0
log_every=1
warmup_steps=10

usage() {
  cat <<HELP
usage: bash test/train_performance_1p.sh --data_path=DIR [flags]
    --max_step=N             training steps (default ${max_step})
    --batch_size=N           tiles per step per device (default ${batch_size})
    --learning_rate=LR       Adam learning rate (default ${learning_rate})
    --crossvalidation_idx=K  validation fold 0..4 (default ${crossvalidation_idx})
    --base_filters=N         first level's width, 64 = NVIDIA (default ${base_filters})
    --tile_size=N            input tile side, 572 -> 388 (default ${tile_size})
    --augment=True|False     data augmentation (default ${augment})
    --use_xla=True|False     XLA-compile the training step (default ${use_xla})
    --seed=N                 random seed (default ${seed})
    --log_every=N            steps between TRAIN lines (default ${log_every})
HELP
  mz_debug_help
}

# Model flags shared by the accuracy scripts (each passes through to main.py).
parse_model_flag() {
  case "$1" in
    --max_step=*) max_step="${1#*=}" ;;
    --batch_size=*) batch_size="${1#*=}" ;;
    --learning_rate=*) learning_rate="${1#*=}" ;;
    --crossvalidation_idx=*) crossvalidation_idx="${1#*=}" ;;
    --base_filters=*) base_filters="${1#*=}" ;;
    --tile_size=*) tile_size="${1#*=}" ;;
    --augment=*) augment="${1#*=}" ;;
    --use_xla=*) use_xla="${1#*=}" ;;
    --seed=*) seed="${1#*=}" ;;
    --log_every=*) log_every="${1#*=}" ;;
    *) return 1 ;;
  esac
}

for para in "$@"; do
  case "${para}" in
    -h|--help) usage; exit 0 ;;
  esac
  mz_debug_flag "${para}" || parse_model_flag "${para}" || mz_unknown_flag "${para}"
done
mz_require_data_path

mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=perf \
  --warmup_steps="${warmup_steps}" --extra_keys=throughput,latency_ms_mean,latency_ms_p90,latency_ms_p95,latency_ms_p99 -- \
  "${mz_python}" "${model_dir}/main.py" --exec_mode=train --benchmark --warmup_steps="${warmup_steps}" \
  --data_dir="${data_path}" --model_dir={output_dir}/ckpt --max_steps="${max_step}" \
  --batch_size="${batch_size}" --learning_rate="${learning_rate}" \
  --crossvalidation_idx="${crossvalidation_idx}" --base_filters="${base_filters}" \
  --tile_size="${tile_size}" --augment="${augment}" --use_xla="${use_xla}" --seed="${seed}" \
  --log_every="${log_every}"

#!/usr/bin/env bash
# The model flags shared by test/train_*.sh: defaults, parsing, help, and the
# main.py arguments they become. Sourced after common/train_script.sh; a
# script may change a default (before mz_parse_flags) as the performance run does.

Network="UNet_Medical_for_TensorFlow"
max_step=1000           # training steps
batch_size=1            # tiles per step per device
learning_rate=0.0001    # Adam, constant
crossvalidation_idx=0   # validation fold 0..4
base_filters=64         # first level's width, 64 = NVIDIA
tile_size=572           # input tile side, 572 -> 388
augment=True
use_xla=False
seed=0
log_every=100           # steps between TRAIN lines

# Consumes one model flag; returns 1 when $1 is not one of them.
model_flag() {
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

model_help() {
  cat <<HELP
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
}

# The main.py arguments of the model flags (after mz_parse_flags).
model_args() {
  args=(--data_dir="${data_path}" --max_steps="${max_step}" --batch_size="${batch_size}"
        --learning_rate="${learning_rate}" --crossvalidation_idx="${crossvalidation_idx}"
        --base_filters="${base_filters}" --tile_size="${tile_size}" --augment="${augment}"
        --use_xla="${use_xla}" --seed="${seed}" --log_every="${log_every}")
}

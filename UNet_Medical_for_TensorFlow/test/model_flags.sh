#!/usr/bin/env bash
# The model flags shared by test/train_*.sh: defaults, parsing, help, and the
# main.py arguments they become. Sourced after common/train_script.sh, whose
# flag loop parses the common names (--batch_size, --train_epochs,
# --train_steps with its aliases --max_step/--max_steps, --learning_rate,
# --ckpt_path, --resume); this file only sets their defaults. A script may
# change a default (before mz_parse_flags) as the performance run does.

Network="UNet_Medical_for_TensorFlow"
# Common names (parsed by common/train_script.sh).
batch_size=1            # tiles per step per device
train_epochs=0          # epoch cap; an epoch = as many tiles as the training fold has slices (0 = none)
train_steps=1000        # step cap (0 = none); training stops at the first cap reached
learning_rate=0.0001    # Adam, constant
ckpt_path=""            # run folder that survives reruns (empty: test/output/<device>/ckpt, recreated)
resume=True             # with --ckpt_path: continue its checkpoint; False starts over
checkpoint_every=100    # steps between checkpoints
# Model flags.
crossvalidation_idx=0   # validation fold 0..4
fold_scheme=partition   # partition (disjoint folds) or nvidia (NVIDIA's overlapping folds)
base_filters=64         # first level's width, 64 = NVIDIA
tile_size=572           # input tile side, 572 -> 388
augment=True
augment_set=nvidia      # nvidia: flips, crop, brightness; full: also rot90, elastic
input_mode=overlap_tile # overlap_tile (paper, native resolution) or resize (NVIDIA)
use_xla=False
seed=0
log_every=100           # steps between TRAIN lines

# Consumes one model flag; returns 1 when $1 is not one of them.
model_flag() {
  case "$1" in
    --crossvalidation_idx=*) crossvalidation_idx="${1#*=}" ;;
    --fold_scheme=*) fold_scheme="${1#*=}" ;;
    --base_filters=*) base_filters="${1#*=}" ;;
    --tile_size=*) tile_size="${1#*=}" ;;
    --augment=*) augment="${1#*=}" ;;
    --augment_set=*) augment_set="${1#*=}" ;;
    --input_mode=*) input_mode="${1#*=}" ;;
    --use_xla=*) use_xla="${1#*=}" ;;
    --seed=*) seed="${1#*=}" ;;
    --log_every=*) log_every="${1#*=}" ;;
    *) return 1 ;;
  esac
}

model_help() {
  cat <<HELP
    --crossvalidation_idx=K  validation fold 0..4 (default ${crossvalidation_idx})
    --fold_scheme=SCHEME     partition (disjoint folds) or nvidia (NVIDIA's overlapping folds) (default ${fold_scheme})
    --base_filters=N         first level's width, 64 = NVIDIA (default ${base_filters})
    --tile_size=N            input tile side, 572 -> 388 (default ${tile_size})
    --augment=True|False     data augmentation (default ${augment})
    --augment_set=SET        nvidia (flips, crop, brightness) or full (also rot90, elastic) (default ${augment_set})
    --input_mode=MODE        overlap_tile (native resolution) or resize (NVIDIA) (default ${input_mode})
    --use_xla=True|False     XLA-compile the training step (default ${use_xla})
    --seed=N                 random seed (default ${seed})
    --log_every=N            steps between TRAIN lines (default ${log_every})
  An epoch (--train_epochs) is as many tiles as the training fold has slices
  (24 for an ISBI fold); --train_steps and --train_epochs are both caps.
HELP
}

# The main.py arguments of the flags (after mz_parse_flags and mz_run_folder).
model_args() {
  args=(--data_dir="${data_path}" --max_steps="${train_steps}" --train_epochs="${train_epochs}"
        --batch_size="${batch_size}" --learning_rate="${learning_rate}"
        --crossvalidation_idx="${crossvalidation_idx}" --fold_scheme="${fold_scheme}" --base_filters="${base_filters}"
        --tile_size="${tile_size}" --augment="${augment}" --augment_set="${augment_set}"
        --input_mode="${input_mode}" --use_xla="${use_xla}" --seed="${seed}" --log_every="${log_every}"
        --model_dir="${run_folder}" --resume="${run_resume}"
        --checkpoint_every="${checkpoint_every}" --keep_checkpoints="${keep_checkpoints}")
}

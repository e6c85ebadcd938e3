#!/usr/bin/env bash
# The model flags shared by test/train_*.sh: defaults, parsing, help, and the
# main.py arguments they become. Sourced after common/train_script.sh, which
# parses the common names (--batch_size, --train_epochs, --train_steps,
# --learning_rate, --ckpt_path, --resume); this file sets their defaults. A
# script may change a default (before mz_parse_flags) as the performance run does.

Network="MobileNetV3_for_TensorFlow"
batch_size=32          # images per device and step
train_epochs=20        # epochs
train_steps=0          # stop after this many steps in total (0: every epoch)
learning_rate=0.001    # peak learning rate
checkpoint_every=100   # steps between checkpoints (--save_interval); each epoch's end is one too
model=small            # small | large
task=classification    # classification | segmentation
log_every=1            # steps between TRAIN lines (main.py's default)
extra=()               # the other main.py flags, passed through as given
# Whether the user gave --learning_rate (whatever its value): --recipe=paper scales its own otherwise.
# The scripts source this file with their arguments.
learning_rate_given=False
for flag in "$@"; do
  [[ "${flag}" == --learning_rate=* ]] && learning_rate_given=True
done

# Consumes one model flag; returns 1 when $1 is not one of them.
model_flag() {
  case "$1" in
    --model=*) model="${1#*=}" ;;
    --task=*) task="${1#*=}" ;;
    # The seed's spellings of common flags.
    --batch=*) batch_size="${1#*=}" ;;
    --epochs=*) train_epochs="${1#*=}" ;;
    --modeldir=*) ckpt_path="${1#*=}" ;;
    --save_interval=*) checkpoint_every="${1#*=}" ;;
    --alpha=*|--height=*|--width=*|--class_number=*|--bn_momentum=*|\
    --seed=*|--optimizer=*|--lr_schedule=*|--warmup_epochs=*|--lr_decay_epochs=*|--lr_decay_rate=*|\
    --label_smoothing=*|--dropout=*|--weights=*|--freeze_backbone_epochs=*|--loss_scale=*|--use_xla=*|\
    --recipe=*|--weight_decay=*|--ema_momentum=*|\
    --skip_bad_images=*|--cache_budget_mb=*)
      extra+=("$1") ;;
    --log_every=*) log_every="${1#*=}"; extra+=("$1") ;;
    *) return 1 ;;
  esac
}

model_help() {
  cat <<HELP
    --model=small|large      network (default ${model})
    --task=classification|segmentation  (default ${task}); segmentation reports mIoU
    --batch=N, --epochs=N, --modeldir=DIR, --save_interval=N  the seed's spellings of --batch_size,
                             --train_epochs, --ckpt_path, --checkpoint_every
    --loss_scale=True|False|X  True: dynamic loss scaling under float16 (GPU; the default), False: none,
                             X: its initial scale
    --alpha=X, --height=N, --width=N, --class_number=N,
    --bn_momentum=X, --seed=N, --optimizer=adam|rmsprop, --lr_schedule=cosine|step|constant,
    --warmup_epochs=X, --lr_decay_epochs=X, --lr_decay_rate=X, --label_smoothing=X, --dropout=X,
    --weights=imagenet|PATH, --freeze_backbone_epochs=N, --use_xla=True|False,
    --recipe=seed|paper, --weight_decay=X, --ema_momentum=X,
    --skip_bad_images=True|False, --cache_budget_mb=MB,
    --log_every=N            passed to main.py (see python3 main.py --help)
    Mixed precision: --precision_mode=allow_mix_precision (main.py's --use_amp is the same switch).
HELP
}

# The launcher's warm-up steps: at least $1, and at least one logging interval, since the first
# TRAIN line of a run (or of a resumed segment) covers the steps that traced the graph.
model_warmup() {
  if [[ "${log_every}" =~ ^[0-9]+$ ]] && [ "${log_every}" -gt "$1" ]; then echo "${log_every}"; else echo "$1"; fi
}

# The main.py arguments of the model flags (after mz_parse_flags and
# mz_run_folder), and the METRIC reported as TrainAccuracy.
model_args() {
  local learning_rate_arg=(--learning_rate="${learning_rate}")
  # --recipe=paper scales its learning rate to the batch, unless --learning_rate is given.
  if [[ " ${extra[*]} " == *" --recipe=paper "* ]] && [ "${learning_rate_given}" = False ]; then
    learning_rate_arg=()
  fi
  args=(--data_path="${data_path}" --task="${task}" --model="${model}" --batch_size="${batch_size}"
        --train_epochs="${train_epochs}" "${learning_rate_arg[@]}" --max_steps="${train_steps}"
        --model_dir="${run_folder}" --resume="${run_resume}" --checkpoint_every="${checkpoint_every}"
        --keep_checkpoints="${keep_checkpoints}"
        "${extra[@]}")
  accuracy_key=top1
  [ "${task}" = "segmentation" ] && accuracy_key=miou
}

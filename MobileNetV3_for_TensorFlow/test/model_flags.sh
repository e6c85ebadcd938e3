#!/usr/bin/env bash
# The model flags shared by test/train_*.sh: defaults, parsing, help, and the
# main.py arguments they become. Sourced after common/train_script.sh; a
# script may change a default (before mz_parse_flags) as the performance run does.

Network="MobileNetV3_for_TensorFlow"
batch_size=32          # images per device and step
train_epochs=20        # epochs
learning_rate=0.001    # peak learning rate
model=small            # small | large
max_step=0             # stop after this many steps in total (0: every epoch)
task=classification    # classification | segmentation
extra=()               # the other main.py flags, passed through as given

# Consumes one model flag; returns 1 when $1 is not one of them.
model_flag() {
  case "$1" in
    --batch_size=*) batch_size="${1#*=}" ;;
    --train_epochs=*) train_epochs="${1#*=}" ;;
    --learning_rate=*) learning_rate="${1#*=}" ;;
    --model=*) model="${1#*=}" ;;
    --max_step=*) max_step="${1#*=}" ;;
    --task=*) task="${1#*=}" ;;
    --alpha=*|--height=*|--width=*|--class_number=*|--save_interval=*|--bn_momentum=*|\
    --seed=*|--optimizer=*|--lr_schedule=*|--warmup_epochs=*|--lr_decay_epochs=*|--lr_decay_rate=*|\
    --label_smoothing=*|--dropout=*|--weights=*|--freeze_backbone_epochs=*|--loss_scale=*|--use_xla=*|\
    --skip_bad_images=*|--log_every=*)
      extra+=("$1") ;;
    *) return 1 ;;
  esac
}

model_help() {
  cat <<HELP
    --batch_size=N           images per device and step (default ${batch_size})
    --train_epochs=N         epochs (default ${train_epochs})
    --learning_rate=X        peak learning rate (default ${learning_rate})
    --model=small|large      network (default ${model})
    --max_step=N             stop after N steps in total, 0 = every epoch (default ${max_step})
    --task=classification|segmentation  (default ${task}); segmentation reports mIoU
    --alpha=X, --height=N, --width=N, --class_number=N, --save_interval=N,
    --bn_momentum=X, --seed=N, --optimizer=adam|rmsprop, --lr_schedule=cosine|step|constant,
    --warmup_epochs=X, --lr_decay_epochs=X, --lr_decay_rate=X, --label_smoothing=X, --dropout=X,
    --weights=PATH, --freeze_backbone_epochs=N, --loss_scale=X, --use_xla=True|False,
    --skip_bad_images=True|False,
    --log_every=N            passed to main.py (see python3 main.py --help)
    Mixed precision: --precision_mode=allow_mix_precision (main.py's --use_amp is the same switch).
HELP
}

# The main.py arguments of the model flags (after mz_parse_flags), and the
# METRIC reported as TrainAccuracy.
model_args() {
  args=(--data_path="${data_path}" --task="${task}" --model="${model}" --batch="${batch_size}"
        --epochs="${train_epochs}" --learning_rate="${learning_rate}" --max_step="${max_step}"
        "${extra[@]}")
  accuracy_key=top1
  [ "${task}" = "segmentation" ] && accuracy_key=miou
}

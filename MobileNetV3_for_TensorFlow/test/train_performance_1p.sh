#!/usr/bin/env bash
# Performance run on one device: a short training (max_step steps), no final evaluation.
# The summary is ${Network}_bs${batch_size}_1p_perf.
#   bash test/train_performance_1p.sh --data_path=DIR [--model=small] [--batch_size=N] ...
Network="MobileNetV3_for_TensorFlow"
batch_size=32
train_epochs=1
learning_rate=0.001
model=small
max_step=50
extra=()
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"

usage() {
  cat <<HELP
usage: bash test/train_performance_1p.sh --data_path=DIR [flags]
    --batch_size=N           images per device and step (default ${batch_size})
    --train_epochs=N         epochs (default ${train_epochs})
    --learning_rate=X        peak learning rate (default ${learning_rate})
    --model=small|large      network (default ${model})
    --max_step=N             steps to time (default ${max_step})
    --alpha=X, --height=N, --width=N, --class_number=N, --save_interval=N,
    --bn_momentum=X, --seed=N, --optimizer=adam|rmsprop, --lr_schedule=cosine|step|constant,
    --warmup_epochs=X, --label_smoothing=X, --weights=PATH, --freeze_backbone_epochs=N,
    --task=classification|segmentation, --use_xla=True|False, --skip_bad_images=True|False,
    --log_every=N            passed to main.py (see python3 main.py --help)
HELP
  mz_debug_help
}

for para in "$@"; do
  if mz_debug_flag "${para}"; then continue; fi
  case "${para}" in
    -h|--help) usage; exit 0 ;;
    --batch_size=*) batch_size="${para#*=}" ;;
    --train_epochs=*) train_epochs="${para#*=}" ;;
    --learning_rate=*) learning_rate="${para#*=}" ;;
    --model=*) model="${para#*=}" ;;
    --max_step=*) max_step="${para#*=}" ;;
    --alpha=*|--height=*|--width=*|--class_number=*|--save_interval=*|--bn_momentum=*|\
    --seed=*|--optimizer=*|--lr_schedule=*|--warmup_epochs=*|--label_smoothing=*|--weights=*|\
    --freeze_backbone_epochs=*|--task=*|--use_xla=*|--skip_bad_images=*|--log_every=*)
      extra+=("${para}") ;;
    *) mz_unknown_flag "${para}" ;;
  esac
done
mz_require_data_path

mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=perf \
  --warmup_steps=5 -- \
  "${mz_python}" "${model_dir}/main.py" --mode=train --max_step="${max_step}" --data_path="${data_path}" \
  --model="${model}" --batch="${batch_size}" --epochs="${train_epochs}" \
  --learning_rate="${learning_rate}" --modeldir="{output_dir}/ckpt" "${extra[@]}"

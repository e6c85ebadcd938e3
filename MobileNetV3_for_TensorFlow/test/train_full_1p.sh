#!/usr/bin/env bash
# Accuracy run on one device: train, then evaluate the best model on the
# validation split. TrainAccuracy = validation top-1 (METRIC top1).
#   bash test/train_full_1p.sh --data_path=DIR [--model=small] [--batch_size=N] ...
Network="MobileNetV3_for_TensorFlow"
batch_size=32
train_epochs=20
learning_rate=0.001
model=small
extra=()
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"

usage() {
  cat <<HELP
usage: bash test/train_full_1p.sh --data_path=DIR [flags]
    --batch_size=N           images per device and step (default ${batch_size})
    --train_epochs=N         epochs (default ${train_epochs})
    --learning_rate=X        peak learning rate (default ${learning_rate})
    --model=small|large      network (default ${model})
    --max_step=N, --alpha=X, --height=N, --width=N, --class_number=N, --save_interval=N,
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
    --max_step=*|--alpha=*|--height=*|--width=*|--class_number=*|--save_interval=*|--bn_momentum=*|\
    --seed=*|--optimizer=*|--lr_schedule=*|--warmup_epochs=*|--label_smoothing=*|--weights=*|\
    --freeze_backbone_epochs=*|--task=*|--use_xla=*|--skip_bad_images=*|--log_every=*)
      extra+=("${para}") ;;
    *) mz_unknown_flag "${para}" ;;
  esac
done
mz_require_data_path
accuracy_key=top1
for flag in "${extra[@]}"; do
  [ "${flag}" = "--task=segmentation" ] && accuracy_key=miou
done

mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=acc \
  --accuracy_key="${accuracy_key}" --warmup_steps=2 -- \
  "${mz_python}" "${model_dir}/main.py" --mode=train_and_evaluate --data_path="${data_path}" \
  --model="${model}" --batch="${batch_size}" --epochs="${train_epochs}" \
  --learning_rate="${learning_rate}" --modeldir="{output_dir}/ckpt" "${extra[@]}"

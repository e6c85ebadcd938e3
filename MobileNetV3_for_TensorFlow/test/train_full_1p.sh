#!/usr/bin/env bash
# Accuracy run on one device: train, then evaluate the best model on the
# validation split. TrainAccuracy = validation top-1 (METRIC top1; mIoU with
# --task=segmentation).
#   bash test/train_full_1p.sh --data_path=DIR [--model=small] [--batch_size=N] [--ckpt_path=DIR] ...
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script_legacy.sh"
source "${cur_path}/model_flags.sh" "$@"
mz_parse_flags "$@"
mz_run_folder
model_args
mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=acc \
  --accuracy_key="${accuracy_key}" --warmup_steps="$(model_warmup 2)" -- \
  "${mz_python}" "${model_dir}/main.py" --mode=train_and_evaluate "${args[@]}"

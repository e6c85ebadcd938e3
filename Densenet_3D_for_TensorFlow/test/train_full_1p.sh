#!/usr/bin/env bash
# Accuracy run on one device: train (5 epochs of dense24 by default), then
# test on the held-out cases. TrainAccuracy = mean WT Dice; the .log also
# holds the TC and ET Dice and the training patches/s.
#   bash test/train_full_1p.sh --data_path=BraTS2017/HGG [--train_steps=N ...]
#   bash test/train_full_1p.sh --data_path=... --ckpt_path=runs/dense24   # rerun: continues
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
source "${cur_path}/model_flags.sh"
mz_parse_flags "$@"
mz_run_folder
model_args
mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=acc --warmup_steps=1 \
  --accuracy_key=wt_dice --extra_keys=tc_dice,et_dice,patches_per_sec \
  -- "${mz_python}" "${model_dir}/main.py" --mode=train_test "${args[@]}"

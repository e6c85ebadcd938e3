#!/usr/bin/env bash
# Accuracy run on one device: train (5 epochs of dense24 by default), then
# test on the held-out cases. TrainAccuracy = mean WT Dice; the .log also
# holds the TC and ET Dice and the training patches/s.
#   bash test/train_full_1p.sh --data_path=BraTS2017/HGG [--train_steps=N ...]
#   bash test/train_full_1p.sh --data_path=... --ckpt_path=runs/dense24   # rerun: continues
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script_legacy.sh"
source "${cur_path}/model_flags.sh"
mz_parse_flags "$@"
mz_run_folder
model_args
# main.py logs a segment's first step (graph tracing), then every --log_every
# steps; the launcher counts the warm-up from one logging gap before a segment's
# first line, so a warm-up of --log_every steps leaves the tracing step out
# wherever the segment starts (common/launcher.py throughput()).
mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=acc --warmup_steps="${log_every}" \
  --accuracy_key=wt_dice --extra_keys=tc_dice,et_dice,patches_per_sec \
  -- "${mz_python}" "${model_dir}/main.py" --mode=train_test "${args[@]}"

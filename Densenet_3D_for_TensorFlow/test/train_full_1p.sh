#!/usr/bin/env bash
# Accuracy run on one device: train (5 epochs of dense24 by default), then
# test on the held-out cases. TrainAccuracy = mean WT Dice; the .log also
# holds the TC and ET Dice and the training patches/s. Every main.py flag is
# a flag of this script too.
#   bash test/train_full_1p.sh --data_path=BraTS2017/HGG [--max_steps=N ...]
#   bash test/train_full_1p.sh --data_path=... --ckpt_path=runs/dense24   # rerun: continues
# shellcheck disable=SC2154  # arg_<flag>: set by mz_parse_flags (common/train_script.sh)
mz_common="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
[ -f "${mz_common}" ] || { echo "[Error] $(basename "$0") needs the repository's common/ folder beside this model directory" >&2; exit 2; }
# shellcheck source=../../common/train_script.sh
source "${mz_common}"
mz_parse_flags --mode=train_and_evaluate -- "$@"
mz_refuse_inside_output --n4_cache_dir "${arg_n4_cache_dir}"
# main.py logs a segment's first step (graph tracing), then every --log_every
# steps; the launcher counts the warm-up from one logging gap before a segment's
# first line, so a warm-up of --log_every steps leaves the tracing step out
# wherever the segment starts (common/launcher.py timed_steps()).
mz_launch --case_kind=acc --warmup_steps="${arg_log_every}" --accuracy_key=wt_dice \
  --extra_keys=tc_dice,et_dice

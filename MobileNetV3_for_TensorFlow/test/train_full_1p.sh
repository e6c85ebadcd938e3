#!/usr/bin/env bash
# Accuracy run on one device: train, then evaluate the best model on the
# validation split. TrainAccuracy = validation top-1 (METRIC top1; mIoU with
# --task=segmentation). Every main.py flag is a flag of this script too.
#   bash test/train_full_1p.sh --data_path=DIR [--model=small] [--batch_size=N] [--ckpt_path=DIR] ...
# shellcheck disable=SC2154  # arg_<flag>: set by mz_parse_flags (common/train_script.sh)
mz_common="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
[ -f "${mz_common}" ] || { echo "[Error] $(basename "$0") needs the repository's common/ folder beside this model directory" >&2; exit 2; }
# shellcheck source=../../common/train_script.sh
source "${mz_common}"
mz_parse_flags --mode=train_and_evaluate --batch_size=32 -- "$@"
accuracy_key=top1
[ "${arg_task}" = segmentation ] && accuracy_key=miou
# The first TRAIN line of a run (or of a resumed segment) covers the steps that traced the graph:
# the warm-up is at least one logging interval.
mz_launch --case_kind=acc --accuracy_key="${accuracy_key}" --warmup_steps="$(( arg_log_every > 2 ? arg_log_every : 2 ))"

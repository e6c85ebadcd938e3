#!/usr/bin/env bash
# ModelZoo accuracy run on one device: train_and_evaluate on one fold (--crossvalidation_idx, 0 by
# default), then the summary with TrainAccuracy = NVIDIA's eval_dice_score of the validation slices
# (runtime/metrics.py). Every main.py flag is a flag of this script too.
#   bash test/train_full_1p.sh --data_path=DIR [flags]
# shellcheck disable=SC2154  # arg_<flag>: set by mz_parse_flags (common/train_script.sh)
mz_common="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
[ -f "${mz_common}" ] || { echo "[Error] $(basename "$0") needs the repository's common/ folder beside this model directory" >&2; exit 2; }
# shellcheck source=../../common/train_script.sh
source "${mz_common}"
mz_parse_flags --mode=train_and_evaluate --crossvalidation_idx=0 --augment=True -- "$@"
# ActualFPS leaves out the first TRAIN interval (steps 1..log_every): it holds
# the graph tracing and compilation and is many times slower than the rest.
mz_launch --case_kind=acc --warmup_steps="${arg_log_every}" --accuracy_key=eval_dice_score \
  --extra_keys=dice,dice_soft,iou,pixel_error

#!/usr/bin/env bash
# Five-fold cross-validation: test/train_full_1p.sh once per fold 0..4 (any of
# its flags pass through, but not --crossvalidation_idx), then the mean and
# standard deviation of NVIDIA's eval_dice_score over the folds, as NVIDIA's
# published table. With --ckpt_path=DIR each fold keeps its run in DIR/fold<k>
# (a rerun resumes each fold; a fold that had already finished is evaluated
# again); otherwise in test/output/folds/<k>/. On a terminal the training
# lines show as they come.
#   bash test/train_5fold_1p.sh --data_path=DIR [train_full_1p.sh flags]
set -uo pipefail
cur_path="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
output_root="${MZ_OUTPUT_DIR:-${cur_path}/output}"
ckpt_path=""
passed=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --crossvalidation_idx|--crossvalidation_idx=*|--fold|--fold=*)
      echo "[Error] ${1%%=*}: train_5fold_1p.sh runs every fold itself" >&2; exit 2 ;;
    --ckpt_path=*|--model_dir=*) ckpt_path="${1#*=}" ;;
    --ckpt_path|--model_dir) ckpt_path="${2:-}"; shift ;;
    -h|--help)  # this script's help: train_full_1p.sh's flags, and what this script passes on
      MZ_SCRIPT="${MZ_SCRIPT:-${BASH_SOURCE[0]}}" exec bash "${cur_path}/train_full_1p.sh" "${passed[@]}" "$@" ;;
    *) passed+=("$1") ;;
  esac
  shift
done
[ -t 1 ] && export MZ_SHOW_PROGRESS="${MZ_SHOW_PROGRESS:-1}"
device="${ASCEND_DEVICE_ID:-0}"
fold_out="$(mktemp)"
trap 'rm -f "${fold_out}"' EXIT
dices=()
for fold in 0 1 2 3 4; do
  echo "=== fold ${fold}"
  fold_ckpt=()
  [ -n "${ckpt_path}" ] && fold_ckpt=(--ckpt_path="${ckpt_path}/fold${fold}")
  bash "${cur_path}/train_full_1p.sh" "${passed[@]}" "${fold_ckpt[@]}" --crossvalidation_idx="${fold}" \
    | tee "${fold_out}"
  rc=${PIPESTATUS[0]}
  [ "${MZ_DRY_RUN:-0}" = 1 ] && exit "${rc}"  # fold 0's launcher command printed (common/train_script.sh)
  dice="$(sed -n 's/^Final Train Accuracy : //p' "${fold_out}")"
  log="${output_root}/${device}/train_${device}.log"
  if [ "${rc}" -ne 0 ] && [ -n "${ckpt_path}" ] && grep -q '^\[train\] checkpoint step .* already reaches' "${log}"; then
    # A rerun: this fold's run had reached its last step, so the launcher saw no TRAIN line
    # and made no summary; main.py still evaluated it, and that line is in the log.
    dice="$(sed -n 's/^METRIC eval_dice_score=//p' "${log}" | tail -n 1)"
    [ -n "${dice}" ] && rc=0 && echo "[5fold] fold ${fold} had already finished in ${ckpt_path}/fold${fold}" \
      "(hence no summary above); its eval_dice_score: ${dice}"
  fi
  [ "${rc}" -eq 0 ] || { echo "[Error] fold ${fold} failed (exit ${rc})" >&2; exit "${rc}"; }
  rm -rf "${output_root}/folds/${fold}"
  mkdir -p "${output_root}/folds" && cp -r "${output_root}/${device}" "${output_root}/folds/${fold}"
  dices+=("${dice}")
done
python3 - "${dices[@]}" <<'PY'
import statistics, sys
dices = [float(d) for d in sys.argv[1:]]
# NVIDIA's table: the mean of the five folds' eval_dice_score; beside it both stds, named: the
# population std (divides by the number of folds) and the sample std (by one less).
print("5-fold eval_dice_score: " + " ".join(f"{d:.4f}" for d in dices))
print(f"5-fold eval_dice_score mean : {statistics.mean(dices):.4f}  population std : "
      f"{statistics.pstdev(dices):.4f}  sample std : {statistics.stdev(dices):.4f}")
PY

#!/usr/bin/env bash
# Five-fold cross-validation: test/train_full_1p.sh once per fold 0..4 (any of
# its flags pass through, but not --crossvalidation_idx), then the mean and
# standard deviation of the validation Dice, as NVIDIA's published table.
#   bash test/train_5fold_1p.sh --data_path=DIR [train_full_1p.sh flags]
set -uo pipefail
cur_path="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
for para in "$@"; do
  case "${para}" in
    --crossvalidation_idx=*) echo "[Error] train_5fold_1p.sh runs every fold itself" >&2; exit 1 ;;
    -h|--help) exec bash "${cur_path}/train_full_1p.sh" --help ;;
  esac
done
dices=()
for fold in 0 1 2 3 4; do
  echo "=== fold ${fold}"
  out="$(bash "${cur_path}/train_full_1p.sh" "$@" --crossvalidation_idx="${fold}")"
  rc=$?
  echo "${out}"
  [ "${rc}" -eq 0 ] || { echo "[Error] fold ${fold} failed (exit ${rc})" >&2; exit "${rc}"; }
  rm -rf "${cur_path}/output/folds/${fold}"
  mkdir -p "${cur_path}/output/folds" && cp -r "${cur_path}/output/${ASCEND_DEVICE_ID:-0}" "${cur_path}/output/folds/${fold}"
  dices+=("$(echo "${out}" | sed -n 's/^Final Train Accuracy : //p')")
done
python3 - "${dices[@]}" <<'PY'
import statistics, sys
dices = [float(d) for d in sys.argv[1:]]
print("5-fold Dice: " + " ".join(f"{d:.4f}" for d in dices))
print(f"5-fold Dice mean : {statistics.mean(dices):.4f}  std : {statistics.pstdev(dices):.4f}")
PY

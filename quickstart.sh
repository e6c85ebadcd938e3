#!/usr/bin/env bash
# One command from a fresh clone to trained models: sets up .venv, then for
# every model directory that has test/quickstart_1p.sh, writes its small
# synthetic dataset and trains it briefly through its own
# test/train_full_1p.sh, and prints each model's result lines.
#
# `bash quickstart.sh --stack=tf26` does the same on the TF 2.6.5 stack (the Ascend
# adapter's TensorFlow) in .venv-tf26, with a Python 3.9 from PATH or pyenv.
#
# Adding a model: give its directory an executable test/quickstart_1p.sh that
# takes a data folder, writes the synthetic data there and runs
# test/train_full_1p.sh on it. Nothing here changes.
set -uo pipefail
cd "$(dirname "$0")" || exit 1
repo_root="$(pwd)"
stack=default
for arg in "$@"; do
  case "${arg}" in
    --stack=*) stack="${arg#--stack=}" ;;
    *) echo "[quickstart] unknown argument ${arg} (only --stack=default|tf26)"; exit 2 ;;
  esac
done
source common/use_stack.sh "${stack}" || exit 1

data_root="${QUICKSTART_DATA:-${repo_root}/data/quickstart}"
[ "${stack}" = default ] || data_root="${data_root}-${stack}"
# The scripts show the training lines as they come (they still write their logs).
export MZ_SHOW_PROGRESS=1
mkdir -p "${data_root}"
results="$(mktemp)"
trap 'rm -f "${results}"' EXIT
# A log's results: the last value of each METRIC (evaluations repeat them), then the Final lines.
summary_lines() {
  awk '/^METRIC /{split($2, kv, "="); if (!(kv[1] in last)) order[++n] = kv[1]; last[kv[1]] = $0; next}
       /^(Final |E2E )/{final[++m] = $0}
       END{for (i = 1; i <= n; i++) print "  " last[order[i]]; for (i = 1; i <= m; i++) print "  " final[i]}' "$1"
}
ran=0
status=0
for hook in *_for_TensorFlow/test/quickstart_1p.sh; do
  [ -f "${hook}" ] || continue
  model="${hook%%/*}"
  ran=$((ran + 1))
  echo "=== ${model}"
  log="${data_root}/${model}.quickstart.log"
  (cd "${model}" && bash test/quickstart_1p.sh "${data_root}/${model}") 2>&1 | tee "${log}"
  rc=${PIPESTATUS[0]}
  if [ "${rc}" -ne 0 ]; then
    echo "[quickstart] ${model} failed (exit ${rc}); full output in ${log}"
    echo "${model}: FAILED (exit ${rc})" >> "${results}"
    status=1
  else
    { echo "${model}:"; summary_lines "${log}"; } >> "${results}"
  fi
done
if [ "${ran}" -eq 0 ]; then
  echo "[quickstart] no model directory provides test/quickstart_1p.sh yet; the set-up is done."
  exit 0
fi
echo
echo "================== quickstart results =================="
cat "${results}"
exit "${status}"

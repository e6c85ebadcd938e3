#!/usr/bin/env bash
# Shared by every model's test/*.sh: the ModelZoo debug parameters, the flag
# loop, the data_path check and the launch through common/npu_utils.py, which
# runs one process per rank and writes the summary. Source it from a script in
# a model's test/ folder; it sets cur_path (that test/ folder, wherever the
# script was started from), model_dir, repo_root and mz_python, and sources
# test/env.sh. A script defines model_flag (consume one model flag or return 1)
# and model_help, then calls mz_parse_flags "$@" and mz_launch.

cur_path="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
model_dir="$(cd "${cur_path}/.." && pwd)"
repo_root="$(cd "${model_dir}/.." && pwd)"
source "${cur_path}/env.sh"
# The repository's .venv when there is one (run_tests.sh and quickstart.sh
# create it), else the python3 on PATH (an Ascend machine's own TensorFlow).
mz_python="python3"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "${repo_root}/.venv/bin/python" ]; then
  mz_python="${repo_root}/.venv/bin/python"
fi

RANK_SIZE="${RANK_SIZE:-1}"
RANK_ID_START="${RANK_ID_START:-0}"
export RANK_SIZE RANK_ID_START

# Debug parameters (ModelZoo defaults).
data_path=""
precision_mode=""
over_dump=False
data_dump_flag=False
data_dump_step=10
profiling=False
autotune=False

# Consumes one of the shared flags; returns 1 when $1 is not one of them.
mz_debug_flag() {
  case "$1" in
    --data_path=*) data_path="${1#*=}" ;;
    --precision_mode=*) precision_mode="${1#*=}" ;;
    --over_dump=*) over_dump="${1#*=}" ;;
    --over_dump) over_dump=True ;;
    --data_dump_flag=*) data_dump_flag="${1#*=}" ;;
    --data_dump_flag) data_dump_flag=True ;;
    --data_dump_step=*) data_dump_step="${1#*=}" ;;
    --profiling=*) profiling="${1#*=}" ;;
    --profiling) profiling=True ;;
    --autotune=*) autotune="${1#*=}" ;;
    --autotune) autotune=True ;;
    *) return 1 ;;
  esac
}

mz_debug_help() {
  cat <<HELP
    --data_path=DIR          the dataset (required)
    --precision_mode=MODE    allow_fp32_to_fp16 | force_fp16 | must_keep_origin_dtype | allow_mix_precision
                             (default: the device's own; GPU/CPU map it to a Keras policy)
    --over_dump=True|False   overflow detection dump into output/overflow_dump (Ascend only; default False)
    --data_dump_flag=True|False  operator data dump into output/data_dump (Ascend only; default False)
    --data_dump_step=N       steps to dump (default 10)
    --profiling=True|False   profiling into output/profiling (Ascend only; default False)
    --autotune=True|False    operator auto-tuning (Ascend only; default False)
    -h, --help               this help
HELP
}

# mz_parse_flags "$@": every flag must be a shared one (mz_debug_flag) or one
# the script's own model_flag function consumes; -h/--help prints the usage,
# the shared flags and the script's model_help, and exits 0. Then checks
# --data_path.
mz_parse_flags() {
  local para
  for para in "$@"; do
    if [ "${para}" = "-h" ] || [ "${para}" = "--help" ]; then
      echo "usage: bash test/$(basename "$0") --data_path=DIR [flags]"
      mz_debug_help
      model_help
      exit 0
    fi
    mz_debug_flag "${para}" || model_flag "${para}" || mz_unknown_flag "${para}"
  done
  mz_require_data_path
}

mz_unknown_flag() {
  echo "[Error] unknown flag '$1'; see --help" >&2
  exit 1
}

mz_require_data_path() {
  if [ -z "${data_path}" ]; then
    echo '[Error] para "data_path" must be config' >&2
    exit 1
  fi
  if [ ! -d "${data_path}" ]; then
    echo "[Error] --data_path=${data_path} is not a folder" >&2
    exit 1
  fi
  data_path="$(cd "${data_path}" && pwd)"
}

# mz_launch LAUNCH_OPTIONS... -- COMMAND...: runs COMMAND once per rank with
# its output in output/<device>/train_<device>.log ({output_dir} in COMMAND
# is that rank's folder; run main.py with "${mz_python}"), prints the Final result lines and writes
# output/<device>/${CaseName}.log. Exits with the training's status.
mz_launch() {
  cd "${model_dir}" || exit 1
  "${mz_python}" "${repo_root}/common/npu_utils.py" launch \
    --output_root="${cur_path}/output" \
    --precision_mode="${precision_mode}" --over_dump="${over_dump}" \
    --data_dump_flag="${data_dump_flag}" --data_dump_step="${data_dump_step}" \
    --profiling="${profiling}" --autotune="${autotune}" "$@"
  exit $?
}

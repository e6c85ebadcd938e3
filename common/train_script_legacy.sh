#!/usr/bin/env bash
# Shared by every model's test/*.sh: the ModelZoo debug parameters, the flag
# loop, the data_path check and the launch through common/launcher.py, which
# runs one process per rank and writes the summary. Source it from a script in
# a model's test/ folder; it sets cur_path (that test/ folder, wherever the
# script was started from), model_dir, repo_root and mz_python, and sources
# test/env.sh. A script defines model_flag (consume one model flag or return 1)
# and model_help, sets the defaults of the common model flags below, then
# calls mz_parse_flags "$@", mz_run_folder and mz_launch.

cur_path="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
model_dir="$(cd "${cur_path}/.." && pwd)"
repo_root="$(cd "${model_dir}/.." && pwd)"
source "${cur_path}/env.sh"
# The python3 on PATH when it is a venv's (an activated venv, or the stack
# run_tests.sh and quickstart.sh put first: .venv or .venv-tf26) or when there
# is no repository .venv (an Ascend machine's own TensorFlow 2.6.5); else the
# repository's .venv, so that the scripts work without activating it.
mz_python="python3"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "${repo_root}/.venv/bin/python" ] \
   && [ ! -f "$(dirname "$(command -v python3 || echo /nonexistent/python3)")/../pyvenv.cfg" ]; then
  mz_python="${repo_root}/.venv/bin/python"
fi

RANK_SIZE="${RANK_SIZE:-1}"
RANK_ID_START="${RANK_ID_START:-0}"
export RANK_SIZE RANK_ID_START
# Where the runs' output/<device>/ folders go (tests point it into a temporary folder).
mz_output_root="${MZ_OUTPUT_DIR:-${cur_path}/output}"

# Debug parameters (ModelZoo defaults).
data_path=""
precision_mode=""
over_dump=False
data_dump_flag=False
data_dump_step=10
profiling=False
autotune=False

# The common model flags: every model's scripts take these names (the model's
# test/model_flags.sh sets their defaults and turns them into main.py flags).
batch_size=""       # per device
train_epochs=""
train_steps=""      # step cap; --max_step and --max_steps are aliases
learning_rate=""
ckpt_path=""        # a run folder that survives reruns (default: output/<device>/ckpt, made anew each run)
resume=True         # with --ckpt_path: continue from its last checkpoint when it has one
checkpoint_every="" # steps between checkpoints
keep_checkpoints=3  # how many of the newest checkpoints stay

# Consumes one of the shared flags (debug or common model flag); returns 1 when $1 is not one of them.
mz_common_flag() {
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
    --batch_size=*) batch_size="${1#*=}" ;;
    --train_epochs=*) train_epochs="${1#*=}" ;;
    --train_steps=*|--max_step=*|--max_steps=*) train_steps="${1#*=}" ;;
    --learning_rate=*) learning_rate="${1#*=}" ;;
    --ckpt_path=*) ckpt_path="${1#*=}" ;;
    --resume=*) resume="${1#*=}" ;;
    --resume) resume=True ;;
    --checkpoint_every=*) checkpoint_every="${1#*=}" ;;
    --keep_checkpoints=*) keep_checkpoints="${1#*=}" ;;
    *) return 1 ;;
  esac
}

mz_common_help() {
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
  common model flags (the same names in every model):
    --batch_size=N           per device (default ${batch_size})
    --train_epochs=N         epochs (default ${train_epochs})
    --train_steps=N          step cap, 0 = none; --max_step and --max_steps are aliases (default ${train_steps})
    --learning_rate=X        (default ${learning_rate})
    --ckpt_path=DIR          run folder kept across reruns: checkpoints, config.json, every run's logs in
                             logs/segment-NNN/ (default: output/<device>/ckpt, recreated by every run); never
                             deleted, also when it lies inside output/
    --resume=True|False      with --ckpt_path, continue from its last checkpoint when it holds one (default ${resume})
    --checkpoint_every=N     steps between checkpoints (default ${checkpoint_every})
    --keep_checkpoints=N     how many of the newest checkpoints stay (default ${keep_checkpoints})
  ${Network} flags:
HELP
}

# mz_parse_flags "$@": every flag must be a shared one (mz_common_flag) or one
# the script's own model_flag function consumes; -h/--help prints the usage,
# the shared flags and the script's model_help, and exits 0. Then checks
# --data_path.
mz_parse_flags() {
  local para
  for para in "$@"; do
    if [ "${para}" = "-h" ] || [ "${para}" = "--help" ]; then
      echo "usage: bash test/$(basename "$0") --data_path=DIR [flags]"
      mz_common_help
      model_help
      exit 0
    fi
    mz_common_flag "${para}" || model_flag "${para}" || mz_unknown_flag "${para}"
  done
  mz_require_data_path
}

# mz_run_folder: after mz_parse_flags, sets run_folder (the main.py --model_dir:
# the absolute --ckpt_path, created if missing, else the launcher's per-rank
# {output_dir}/ckpt) and run_resume (--resume with --ckpt_path; False in the
# fresh per-rank folder). Checks --resume, --checkpoint_every and --keep_checkpoints.
mz_run_folder() {
  case "${resume}" in
    True|true|1|yes) resume=True ;;
    False|false|0|no) resume=False ;;
    *) echo "[Error] --resume=${resume}: expected True or False" >&2; exit 1 ;;
  esac
  local name value
  for name in checkpoint_every keep_checkpoints; do
    value="${!name}"
    if ! [[ "${value}" =~ ^[0-9]+$ ]] || [ "${value}" -lt 1 ]; then
      echo "[Error] --${name}=${value}: expected an integer >= 1" >&2
      exit 1
    fi
  done
  if [ -n "${ckpt_path}" ]; then
    if [ -e "${ckpt_path}" ] && [ ! -d "${ckpt_path}" ]; then
      echo "[Error] --ckpt_path=${ckpt_path} is a file, not a folder" >&2
      exit 1
    fi
    mkdir -p "${ckpt_path}" || { echo "[Error] --ckpt_path=${ckpt_path} cannot be created" >&2; exit 1; }
    run_folder="$(cd "${ckpt_path}" && pwd)"
    run_resume="${resume}"
  else
    run_folder="{output_dir}/ckpt"
    run_resume=False
  fi
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
  # A --ckpt_path run folder keeps every run's logs (logs/segment-NNN/) and the summary covers them all.
  "${mz_python}" "${repo_root}/common/launcher.py" launch \
    --output_root="${mz_output_root}" ${ckpt_path:+"--run_folder=${run_folder}"} \
    --precision_mode="${precision_mode}" --over_dump="${over_dump}" \
    --data_dump_flag="${data_dump_flag}" --data_dump_step="${data_dump_step}" \
    --profiling="${profiling}" --autotune="${autotune}" "$@"
  exit $?
}

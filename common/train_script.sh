#!/usr/bin/env bash
# Shared by every model's test/*.sh: the flags (common/script_flags.py) and the
# launch through common/launcher.py, which runs one process per rank and writes
# the summary. Source it from a script in a model's test/ folder; it sets
# cur_path (that test/ folder, wherever the script was started from), model_dir,
# repo_root and mz_python, and sources test/env.sh and test/model_flags.sh
# (Network, the model's name in the summary). A script then calls
# mz_parse_flags SETTING... -- "$@" and mz_launch LAUNCH_OPTION....

cur_path="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
model_dir="$(cd "${cur_path}/.." && pwd)"
repo_root="$(cd "${model_dir}/.." && pwd)"
# shellcheck source=/dev/null  # the calling model's own test/env.sh and test/model_flags.sh
source "${cur_path}/env.sh"
# shellcheck source=/dev/null
source "${cur_path}/model_flags.sh"
# The python3 on PATH when it is a venv's (an activated venv, or the stack
# run_tests.sh and quickstart.sh put first: .venv or .venv-tf26) or when there
# is no repository .venv (an Ascend machine's own TensorFlow 2.6.5); else the
# repository's .venv, so that the scripts work without activating it.
mz_python="python3"
if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "${repo_root}/.venv/bin/python" ] \
   && [ ! -f "$(dirname "$(command -v python3 || echo /nonexistent/python3)")/../pyvenv.cfg" ]; then
  mz_python="${repo_root}/.venv/bin/python"
fi

# One process, whatever RANK_SIZE the shell holds (left over from an 8p job, say), as ModelZoo's 1p
# scripts pin it; the 8p scripts pass their rank count as MZ_RANK_SIZE.
RANK_SIZE="${MZ_RANK_SIZE:-1}"
if [ -n "${MZ_RANK_SIZE:-}" ] && ! [ "${MZ_RANK_SIZE}" -ge 2 ] 2>/dev/null; then
  echo "[Error] RANK_SIZE=${MZ_RANK_SIZE}: $(basename "${MZ_SCRIPT:-$0}") runs 2 or more ranks (unset: 8); the 1p scripts run one" >&2
  exit 2
fi
RANK_ID_START="${RANK_ID_START:-0}"
export RANK_SIZE RANK_ID_START
# Where the runs' output/<device>/ folders go (tests point it into a temporary folder).
mz_output_root="${MZ_OUTPUT_DIR:-${cur_path}/output}"

# mz_parse_flags SETTING... -- "$@": the script's own main.py flags (SETTINGs, e.g. --mode=train), then
# the user's flags, parsed by common/script_flags.py with the model's own main.py parser (so every
# main.py flag is a script flag, the ModelZoo debug flags among them, with main.py's default; the
# user's win over the SETTINGs), besides --ckpt_path, --train_steps and --rank_table_file. Sets mz_main_args, mz_launch_args and arg_<name>
# for each parsed main.py value (arg_batch_size, arg_log_every, ...). --help prints the script's
# help and exits 0; a bad flag is one line and exit 2.
mz_parse_flags() {
  local settings=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
    settings+=("$1")
    shift
  done
  [ "$#" -gt 0 ] && shift
  local code
  code="$("${mz_python}" "${repo_root}/common/script_flags.py" "${model_dir}" "$0" "${mz_output_root}" \
          "${#settings[@]}" "${settings[@]}" "$@")" || exit $?
  case " $* " in
    *" -h "*|*" --help "*) echo "${code}"; exit 0 ;;
  esac
  eval "${code}" || { echo "[Error] common/script_flags.py printed no shell code" >&2; exit 1; }
}

# mz_refuse_inside_output FLAG PATH: a folder meant to outlast the run (a cache) may not lie in the
# output folder, which every run recreates; one line and exit 2 if it does.
mz_refuse_inside_output() {
  [ -n "$2" ] || return 0
  case "$(realpath -m "$2")/" in
    "$(realpath -m "${mz_output_root}")/"*)
      echo "[Error] $1=$2 is inside ${mz_output_root}, which every run recreates" >&2
      exit 2 ;;
  esac
}

# mz_launch LAUNCH_OPTION...: runs main.py with mz_main_args once per rank through
# common/launcher.py, with its output in output/<device>/train_<device>.log, prints the
# Final result lines and writes output/<device>/${CaseName}.log. Exits with the training's
# status. A run folder (--ckpt_path) keeps every run's logs (logs/segment-NNN/) and the
# summary covers them all. MZ_DRY_RUN=1 prints the launcher's command instead of running it.
mz_launch() {
  # shellcheck disable=SC2154  # Network from test/model_flags.sh, the rest set by mz_parse_flags' eval
  local launch=("${mz_python}" "${repo_root}/common/launcher.py" launch --network="${Network}"
                --batch_size="${arg_batch_size}" --output_root="${mz_output_root}" "${mz_launch_args[@]}" "$@"
                -- "${mz_python}" "${model_dir}/main.py" "${mz_main_args[@]}")
  if [ "${MZ_DRY_RUN:-0}" = 1 ]; then  # print the command, one argument a line, and run nothing
    printf '%s\n' "${launch[@]}"
    exit 0
  fi
  "${launch[@]}"
  exit $?
}

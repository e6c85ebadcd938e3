#!/usr/bin/env bash
# Performance run on one device: 50 timed training steps (main.py --benchmark:
# no checkpoints, no validation, no best/ model), a TRAIN line every step; the
# summary's step times leave out the first 5 (graph tracing). Every main.py
# flag is a flag of this script too.
#   bash test/train_performance_1p.sh --data_path=DIR [--model=small] [--batch_size=N] ...
# shellcheck disable=SC2154  # arg_<flag>: set by mz_parse_flags (common/train_script.sh)
mz_common="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
[ -f "${mz_common}" ] || { echo "[Error] $(basename "$0") needs the repository's common/ folder beside this model directory" >&2; exit 2; }
# shellcheck source=../../common/train_script.sh
source "${mz_common}"
mz_parse_flags --mode=train --benchmark --batch_size=32 --max_steps=50 --log_every=1 -- "$@"
mz_launch --case_kind=perf --warmup_steps="$(( arg_log_every > 5 ? arg_log_every : 5 ))"

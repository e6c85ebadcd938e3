#!/usr/bin/env bash
# Performance run on one device: 100 timed training steps (main.py --benchmark:
# no checkpoints, no test), a TRAIN line every step; the summary's step times
# leave out the first 5 (graph tracing). main.py also prints patches/s and
# voxels/s (labelled voxels: patches/s x label_size^3) into the log. Every
# main.py flag is a flag of this script too.
#   bash test/train_performance_1p.sh --data_path=BraTS2017/HGG
# shellcheck disable=SC2154  # arg_<flag>: set by mz_parse_flags (common/train_script.sh)
mz_common="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
[ -f "${mz_common}" ] || { echo "[Error] $(basename "$0") needs the repository's common/ folder beside this model directory" >&2; exit 2; }
# shellcheck source=../../common/train_script.sh
source "${mz_common}"
mz_parse_flags --mode=train --benchmark --max_steps=100 --log_every=1 -- "$@"
mz_refuse_inside_output --n4_cache_dir "${arg_n4_cache_dir}"
mz_launch --case_kind=perf --warmup_steps="$(( arg_log_every > 5 ? arg_log_every : 5 ))"

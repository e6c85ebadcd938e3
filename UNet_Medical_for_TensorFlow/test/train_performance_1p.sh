#!/usr/bin/env bash
# ModelZoo performance run on one device: NVIDIA's training benchmark (--benchmark:
# timed training steps, no checkpoints, no evaluation; 50 steps, throughput after
# 10 warm-up steps, with latency percentiles). Every main.py flag is a flag of this script too.
#   bash test/train_performance_1p.sh --data_path=DIR [flags]
# shellcheck disable=SC2154  # arg_<flag>: set by mz_parse_flags (common/train_script.sh)
mz_common="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script.sh"
[ -f "${mz_common}" ] || { echo "[Error] $(basename "$0") needs the repository's common/ folder beside this model directory" >&2; exit 2; }
# shellcheck source=../../common/train_script.sh
source "${mz_common}"
mz_parse_flags --mode=train --benchmark --max_steps=50 --log_every=1 --warmup_steps=10 -- "$@"
mz_launch --case_kind=perf --warmup_steps="${arg_warmup_steps}"

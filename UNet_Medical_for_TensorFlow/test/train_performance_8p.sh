#!/usr/bin/env bash
# ModelZoo performance run on RANK_SIZE devices (default 8): the short
# --benchmark training of train_performance_1p.sh, one process per rank.
#   bash test/train_performance_8p.sh --data_path=DIR [flags]   (--help lists them)
export RANK_SIZE="${RANK_SIZE:-8}"  # one process per device; set RANK_SIZE to change
MZ_SCRIPT="${BASH_SOURCE[0]}" exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/train_performance_1p.sh" "$@"

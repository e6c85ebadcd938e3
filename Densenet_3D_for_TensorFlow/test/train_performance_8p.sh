#!/usr/bin/env bash
# Performance run on RANK_SIZE devices (default 8): train_performance_1p.sh
# with one data-parallel process per device (--batch_size is per device).
#   RANK_SIZE=8 bash test/train_performance_8p.sh --data_path=BraTS2017/HGG
# RANK_SIZE ranks (default 8), one process per device; on Ascend the HCCL rank table is
# --rank_table_file (default $RANK_TABLE_FILE, else configs/rank_table_8p.json: fill it in).
MZ_RANK_SIZE="${RANK_SIZE:-8}" MZ_SCRIPT="${BASH_SOURCE[0]}" \
  exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/train_performance_1p.sh" "$@"

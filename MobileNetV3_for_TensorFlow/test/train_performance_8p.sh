#!/usr/bin/env bash
# Performance run on 8 devices (one process per device, data parallel through
# common/npu_utils): the same flags as train_performance_1p.sh; --batch_size is per device.
#   RANK_SIZE=8 by default; set RANK_TABLE_FILE on Ascend, WORKER_HOSTS or TF_CONFIG across hosts.
# RANK_SIZE ranks (default 8), one process per device; on Ascend the HCCL rank table is
# --rank_table_file (default $RANK_TABLE_FILE, else configs/rank_table_8p.json: fill it in).
MZ_RANK_SIZE="${RANK_SIZE:-8}" MZ_SCRIPT="${BASH_SOURCE[0]}" \
  exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/train_performance_1p.sh" "$@"

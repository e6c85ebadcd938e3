#!/usr/bin/env bash
# Accuracy run on RANK_SIZE devices (default 8): one data-parallel process per
# device through common/npu_utils, each sampling patches from its own share of
# the training cases; rank 0 saves checkpoints and tests. The same flags as
# train_full_1p.sh (--batch_size is per device).
#   RANK_SIZE=8 bash test/train_full_8p.sh --data_path=BraTS2017/HGG
# RANK_SIZE ranks (default 8), one process per device; on Ascend the HCCL rank table is
# --rank_table_file (default $RANK_TABLE_FILE, else configs/rank_table_8p.json: fill it in).
MZ_RANK_SIZE="${RANK_SIZE:-8}" MZ_SCRIPT="${BASH_SOURCE[0]}" \
  exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/train_full_1p.sh" "$@"

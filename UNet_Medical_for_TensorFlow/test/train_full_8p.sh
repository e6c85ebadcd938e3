#!/usr/bin/env bash
# ModelZoo accuracy run on RANK_SIZE devices (default 8): one process per rank
# through common/npu_utils, data-parallel, each rank training on its own shard
# of the slices; the same flags as train_full_1p.sh (--batch_size is per device).
#   bash test/train_full_8p.sh --data_path=DIR [flags]   (--help lists them)
# RANK_SIZE ranks (default 8), one process per device; on Ascend the HCCL rank table is
# --rank_table_file (default $RANK_TABLE_FILE, else configs/rank_table_8p.json: fill it in).
MZ_RANK_SIZE="${RANK_SIZE:-8}" MZ_SCRIPT="${BASH_SOURCE[0]}" \
  exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/train_full_1p.sh" "$@"

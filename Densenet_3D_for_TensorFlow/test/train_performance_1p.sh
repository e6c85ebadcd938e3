#!/usr/bin/env bash
# Performance run on one device: 100 training steps (--train_steps) without
# checkpoints or test; the .log holds patches/s and voxels/s (labelled
# voxels: patches/s x (patch_size - 26)^3).
#   bash test/train_performance_1p.sh --data_path=BraTS2017/HGG
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/../../common/train_script_legacy.sh"
source "${cur_path}/model_flags.sh"
train_steps=100
mz_parse_flags "$@"
mz_run_folder
model_args
# A warm-up of --log_every steps leaves out the graph-tracing step (see train_full_1p.sh).
mz_launch --network="${Network}" --batch_size="${batch_size}" --case_kind=perf --warmup_steps="${log_every}" \
  --extra_keys=patches_per_sec,voxels_per_sec \
  -- "${mz_python}" "${model_dir}/main.py" --mode=train --benchmark "${args[@]}"
